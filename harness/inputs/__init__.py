"""Stage 1, what an evaluation starts from: case files, skill folders, reference ops."""
