"""What the commands do, as library calls: eval, rescore, generate, check a project, move runs."""
