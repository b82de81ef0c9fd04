"""The trusted side of the run check: starts the sandboxed children, judges what comes back."""
