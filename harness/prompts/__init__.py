"""Stage 2: the prompts both arms send, identical apart from the skill block."""
