"""A mutation and coverage quality gate for the error handling of Python code.

Read a run in the order of its data flow: settings -> policy -> regions -> snapshot ->
coverage_step -> mutation (generate) -> selection -> mutation (run) -> verdict -> report.
"""

__version__ = "0.1.0"
