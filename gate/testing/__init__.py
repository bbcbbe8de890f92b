"""Helpers for users' own test suites, apart from the gate's pipeline: `gate.testing.leaks`."""
