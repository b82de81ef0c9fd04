from harness.checks.markers import marker_findings


def test_contains_and_not_contains_ignore_case_like_upskill() -> None:
    text = "Set cuda-capabilities = [\"9.0\"] and use TORCH_LIBRARY_EXPAND."
    found = marker_findings(text, ["9.0", "torch_library_expand"], ["sm_90"])
    assert [f.severity for f in found] == ["note", "note", "note"]
    found = marker_findings("Use SM_90 here", ["9.0"], ["sm_90"])
    assert [(f.key, f.severity) for f in found] == [("contains '9.0'", "error"), ("not_contains 'sm_90'", "error")]
