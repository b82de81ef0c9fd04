"""The `kernelgrade` command line: options and rendering only; the work is in harness/workflows/."""
