"""The coverage HTML child's boundary (`python -P -m gate.steps.coverage_html SPEC`): what it
writes and where; it answers with its exit code alone.

Format history:
1. the first typed format (before it: three positional arguments).
"""

from __future__ import annotations

from dataclasses import dataclass

FORMAT = 1


@dataclass(frozen=True)
class HtmlReportSpec:
    data_file: str
    """coverage.py's data of the measurement."""
    directory: str
    """Where the report goes (its folder is replaced)."""
    title: str
