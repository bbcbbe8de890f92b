"""Renderers: each turns the same `GateResult` into one report's text, and imports nothing of the
gate but the result types (the import walls in pyproject.toml check it). Where the text goes is
`gate.publish`'s business."""
