"""Helpers shared by the engine's tests and the curated error-path suite."""
