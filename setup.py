"""Packaging beside pyproject.toml (which holds the metadata): the packages, and the folders
kernelgrade ships as package data (issue 19 item 15).

kernels_reference/, skills/ and cases/ stay at the top of the repository; a built kernelgrade
carries them as harness/_assets/<name>/, where harness.common.paths.asset_dir finds them when it
is not running from a checkout. pyproject.toml cannot map folders into a package and still find
the packages by pattern, hence this file.
"""

from setuptools import find_packages, setup

ASSETS = ("kernels_reference", "skills", "cases")

packages = find_packages(include=["harness", "harness.*", "sandbox", "sandbox.*"])
package_dir = {}
package_data = {"harness.report": ["templates/*.j2"]}
for name in ASSETS:
    package = f"harness._assets.{name}"
    packages.append(package)
    package_dir[package] = name
    package_data[package] = ["**/*"]

setup(packages=packages, package_dir=package_dir, package_data=package_data,
      exclude_package_data={"": ["__pycache__/*", "*.pyc", "*.so", "*.o"]})
