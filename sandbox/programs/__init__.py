"""Programs that run inside the sandbox: the candidate's child, the reference's child, the load probe.

They import nothing from harness/ and are handed to the sandbox as files, not as the checkout."""
