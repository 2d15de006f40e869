"""Helpers shared by the test suites (real stack access, waiting on conditions, a local upstream)."""
