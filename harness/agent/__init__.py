"""Agent mode (issue 17): the student works in a workspace through a fixed set of tools.

tools.py         the tool contract, rendered for Anthropic and OpenAI, and call parsing
workspace.py     the trial's files: safe writes, confined reads, skill/ read-only
fsops.py         file operations that never follow a symlink (directory fds, O_NOFOLLOW)
conversation.py  provider-neutral steps, stored as JSON, rendered per provider
dispatch.py      one tool call against a workspace -> one tool result; replay on resume
feedback.py      check results -> the compact text run_checks returns; the level cap
providers.py     one model step with tools through the openai / anthropic SDKs
"""
