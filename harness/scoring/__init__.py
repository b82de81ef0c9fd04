"""Stage 6: grade one answer (checks in order) and turn check results into a verdict."""
