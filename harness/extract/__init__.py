"""Stage 4: files out of a model's answer, under safe relative paths only."""
