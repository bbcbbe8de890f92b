"""Renderers: each module's `render(result: GateResult) -> str` turns the same `GateResult` into one
report's text, deriving what it shows (the run's stamp, the counts: `result.counts`) from the
result alone, and imports nothing of the gate but the result types (the import walls in
pyproject.toml check it). `gate.report.registry` names each report's path and renderer; where
the text goes is `gate.publish`'s business. (The registry is a module of its own so that the
terminal reporter, which the CLI imports at start, loads no other renderer.)"""
