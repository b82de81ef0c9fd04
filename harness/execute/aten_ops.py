"""aten op vocabulary shared by the run check's dynamic rules (harness/execute/judge.py) and the
static scan (harness/checks/scan.py). Plain data, no torch import: the scan runs at
the text level and must not pay for torch."""

#: aten ops that allocate, view, copy or fill: they cannot compute an op's result.
TRIVIAL_ATEN = frozenset("""
empty empty_like empty_strided empty_permuted new_empty new_empty_strided zeros zeros_like new_zeros
zero_ fill_ full full_like new_full ones ones_like new_ones view _unsafe_view reshape _reshape_alias
alias as_strided detach detach_ contiguous expand expand_as unsqueeze squeeze t transpose permute
select slice narrow flatten unflatten view_as split split_with_sizes chunk unbind size stride numel dim
resize_ copy_ clone _to_copy to lift_fresh lift_fresh_copy item _local_scalar_dense is_nonzero
result_type set_ resolve_conj resolve_neg _has_compatible_shallow_copy_type is_same_size type_as
is_pinned record_stream
""".split())

__all__ = ["TRIVIAL_ATEN"]
