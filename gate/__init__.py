"""A mutation and coverage quality gate for the error handling of Python code.

Read a run where it reads top to bottom, `gate.run.run_gate`: snapshot -> regions -> scope ->
measurement (the suite under coverage, mutant generation beside it) -> selection -> mutant runs
-> judgement, one module of `gate.steps` each; `gate.rules` decides every finding, `gate.result`
holds what every reporter (`gate.report`) renders, `gate.mutmut_adapter` is the only part that
knows mutmut, and `gate.cli` maps flags to settings and the result to an exit code
(`gate.publish` writes the reports). What crosses between processes is `gate.wire`'s, and every
test run is a `gate.scenario.Scenario`.

This docstring, those of the subpackages and the README are the current picture; the design
document the project started from (`../shared/DESIGN.md`, beside the checkout) describes the
layout it began with.
"""

__version__ = "0.1.0"
