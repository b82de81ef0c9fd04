"""The table of sm_90 parts and the lookup, on device properties as torch reports them on each part
(torch.cuda.get_device_properties: name, multi_processor_count, total_memory in MiB x 2**20 as
printed in public logs of those machines); no GPU needed."""

from __future__ import annotations

import pytest

from harness.limits.parts import PARTS, DeviceProps, identify

MIB = 2 ** 20
H100_SXM = DeviceProps(name="NVIDIA H100 80GB HBM3", sms=132, total_memory=81559 * MIB, driver="550.54.15")
H100_PCIE = DeviceProps(name="NVIDIA H100 PCIe", sms=114, total_memory=81559 * MIB, driver="535.129.03")
H100_NVL = DeviceProps(name="NVIDIA H100 NVL", sms=132, total_memory=95830 * MIB)
H200 = DeviceProps(name="NVIDIA H200", sms=132, total_memory=143771 * MIB, driver="560.35.03")
GH200 = DeviceProps(name="NVIDIA GH200 480GB", sms=132, total_memory=97871 * MIB)
H20 = DeviceProps(name="NVIDIA H20", sms=78, total_memory=97871 * MIB)
MIG = DeviceProps(name="NVIDIA H100 80GB HBM3 MIG 3g.40gb", sms=60, total_memory=40192 * MIB)
UNKNOWN = DeviceProps(name="NVIDIA Hopper Engineering Sample", sms=132, total_memory=81559 * MIB)


@pytest.mark.parametrize(("props", "part", "tbps", "tflops"), [
    (H100_SXM, "H100 SXM5", 3.35, 989.5), (H100_PCIE, "H100 PCIe", 2.0, 756.5), (H100_NVL, "H100 NVL", 3.9, 835.5),
    (H200, "H200 SXM", 4.8, 989.5), (GH200, "GH200 (96 GB HBM3)", 4.0, 989.5), (H20, "H20", 4.0, 148.0),
])
def test_known_parts_are_identified(props, part, tbps, tflops):
    match = identify(props)
    assert match.part is not None and match.part.name == part
    assert match.part.bandwidth == pytest.approx(tbps * 1e12)
    assert match.part.bf16_dense == pytest.approx(tflops * 1e12)
    assert props.name in match.reason


def test_h20_is_not_h200_and_gh200_is_not_h200():
    assert identify(H20).part.name == "H20"
    assert identify(GH200).part.name.startswith("GH200")
    assert identify(H200).part.name == "H200 SXM"


@pytest.mark.parametrize(("props", "why"), [
    (UNKNOWN, "not in the table"),
    (MIG, "60 SMs"),
    (DeviceProps(name="NVIDIA H200", sms=132, total_memory=80 * 1024 * MIB), "outside the table's range"),
    (DeviceProps(name="NVIDIA B200", sms=148, total_memory=183359 * MIB, major=10, minor=0), "compute capability 10.0"),
])
def test_unknown_parts_are_not_matched_and_say_why(props, why):
    match = identify(props)
    assert match.part is None
    assert why in match.reason


def test_every_row_names_its_source_and_dense_bf16():
    for part in PARTS:
        assert part.source and ("datasheet" in part.source or "product brief" in part.source)
        assert 1e14 < part.bf16_dense < 1.1e15 and 1.5e12 < part.bandwidth < 5e12
