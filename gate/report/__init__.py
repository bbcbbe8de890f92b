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

    from gate.report import junit, mutation_html, mutation_json, sarif

    out = settings.reports_dir
    if result.error is not None:
        write_stopped_reports(result, out)
        return
    _write_verdict(result, out)
    mutation_report = mutation_json.report(result, settings.root, sources or settings.root)
    render_report(out / "mutation" / "mutation.json", lambda: json.dumps(mutation_report, indent=1) + "\n")
    render_report(out / "mutation" / "index.html",
                  lambda: mutation_html.render(mutation_report, f"gate: {settings.root.name}"))
    render_report(out / "gate.sarif", lambda: sarif.render(result))
    render_report(out / "gate-junit.xml", lambda: junit.render(result))


def write_stopped_reports(result: GateResult, reports_dir: Path) -> None:
    """The reports of a run that an error stopped: every report of an earlier run removed (none may
    be read as this run's), then its own `summary.json` and `gate-result.json` (what `gate merge`
    reads from each shard)."""
    clear_reports(reports_dir)
    _write_verdict(result, reports_dir)


def _write_verdict(result: GateResult, out: Path) -> None:
    import json

    from gate.report import summary
    from gate.result import to_dict

    render_report(out / "summary.json", lambda: summary.render(result))
    render_report(out / "gate-result.json", lambda: json.dumps(to_dict(result), indent=1) + "\n")
