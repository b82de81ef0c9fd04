"""Agent mode (issue 17): the student works in a workspace through a fixed set of tools.

tools.py         the tool contract, rendered for Anthropic and OpenAI, and call parsing
workspace.py     the trial's files: safe writes, confined reads, skill/ read-only
fsops.py         file operations that never follow a symlink (directory fds, O_NOFOLLOW)
conversation.py  provider-neutral steps, stored as JSON, rendered per provider
dispatch.py      one tool call against a workspace -> one tool result; replay on resume
checks.py        run_checks and the final grade: a snapshot of the workspace through grade_project
feedback.py      check results -> the compact text run_checks returns; the level cap
providers.py     one model step with tools through the openai / anthropic SDKs; tool support
loop.py          one trial: model turns, tool calls, every step stored, the end graded
trajectory.py    a stored trajectory read for the report (turns, tools, skill reads, pass@turn)

The store's table is agent_steps (harness/store/db.py); docs/agent.md has the contract.
"""
