"""A mutation and coverage quality gate for the error handling of Python code.

Read a run where it reads top to bottom, `gate.run.run_gate`: snapshot -> regions -> scope ->
measurement (the suite under coverage, mutant generation beside it) -> selection -> mutant runs -> judgement, one module
of `gate.steps` each; `gate.rules` decides every finding, `gate.result` holds what every reporter
(`gate.report`) renders, `gate.mutmut_adapter` is the only part that knows mutmut, and `gate.cli`
maps flags to settings and the result to an exit code (`gate.publish` writes the reports).
"""

__version__ = "0.1.0"
