"""The JSON that other tools write for the measurement, read as those tools define it: coverage.py's
JSON report (its `files` section) and pytest-reportlog's log (one report per line). Their shapes are
theirs, not the gate's (`gate.wire` holds the gate's own), so they are read here and nowhere else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def coverage_files(json_report: Path) -> dict[str, Any]:
    """coverage.py's JSON report's `files`: path -> executed and missing lines and branches, contexts."""
    return json.loads(json_report.read_text())["files"]


def report_log_entries(logs: list[Path]) -> list[dict[str, Any]]:
    """Every report pytest-reportlog wrote to `logs` (the ones that exist), in order."""
    return [json.loads(line) for log in logs if log.exists() for line in log.read_text().splitlines()]
