"""A kernel-builder project as every stage sees it: build.toml, capabilities, sources."""
