"""Plumbing every stage shares: user errors, state paths, configuration, check-result data."""
