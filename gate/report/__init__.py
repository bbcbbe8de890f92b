"""Reporters: each renders the same `GateResult`; `write_reports` writes them all to `reports/`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from gate.result import GateResult
from gate.settings import Settings


def render_report(path: Path, render: Callable[[], str]) -> None:
    """Write one report: its folder made, and never a half-written file left behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(render(), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# Everything a run writes to the reports folder; anything else there (its README) is the user's.
OWN_REPORTS = ("summary.json", "gate-result.json", "gate.sarif", "gate-junit.xml", "coverage.json",
               "coverage", "mutation")


def clear_reports(reports_dir: Path) -> None:
    """Remove the last run's reports, so that none outlives the run that replaces it."""
    for name in OWN_REPORTS:
        path = reports_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def write_reports(result: GateResult, settings: Settings, sources: Path | None = None) -> None:
    """Every report of a run. coverage.py wrote `coverage/` and `coverage.json` already. The
    mutation report shows the source the mutants were made from: the snapshot in `sources`
    where there is one, else the project."""
    import json

    from gate.report import junit, mutation_html, mutation_json, sarif, summary
    from gate.result import to_dict

    out = settings.reports_dir
    mutation_report = mutation_json.report(result, settings.root, sources or settings.root)
    render_report(out / "summary.json", lambda: summary.render(result))
    render_report(out / "gate-result.json", lambda: json.dumps(to_dict(result), indent=1) + "\n")
    render_report(out / "mutation" / "mutation.json", lambda: json.dumps(mutation_report, indent=1) + "\n")
    render_report(out / "mutation" / "index.html",
                  lambda: mutation_html.render(mutation_report, f"gate: {settings.root.name}"))
    render_report(out / "gate.sarif", lambda: sarif.render(result))
    render_report(out / "gate-junit.xml", lambda: junit.render(result))


def write_error_summary(reports_dir: Path, exit_code: int, slug: str, message: str) -> None:
    """`summary.json` for a run that stopped before it had a result; the other reports are left alone."""
    from gate.report import summary

    render_report(reports_dir / "summary.json", lambda: summary.render_error(exit_code, slug, message))
