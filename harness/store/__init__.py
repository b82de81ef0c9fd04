"""Stage 7: runs, trials, answers and grades in SQLite, with the run's provenance."""
