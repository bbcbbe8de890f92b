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


# Everything a run writes to the reports folder (a --changed run's pages go to `changed/` in it);
# anything else there (its README) is the user's.
VERDICT_FILES = ("summary.json", "gate-result.json")
PAGES = ("index.html", "gate.sarif", "gate-junit.xml", "coverage.json", "coverage", "mutation")


def clear_reports(reports_dir: Path, changed: bool = False) -> None:
    """Remove the last run's reports, so that none outlives the run that replaces it: the verdict
    files always, and this kind of run's pages (a `--changed` run's are `changed/`; a full run
    replaces every page, the last `--changed` run's too)."""
    pages = [reports_dir / "changed"] if changed else [reports_dir / "changed", *(reports_dir / p for p in PAGES)]
    for path in [*(reports_dir / name for name in VERDICT_FILES), *pages]:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def write_reports(result: GateResult, settings: Settings, sources: Path | None = None) -> None:
    """Every report of a run: the verdict files in the reports folder, the pages in
    `settings.pages_dir`. coverage.py wrote `coverage/` and `coverage.json` there already. Each
    page says which run and commit it shows. The mutation report shows the source the mutants
    were made from: the snapshot in `sources` where there is one, else the project."""
    import json

    from gate.report import junit, mutation_html, mutation_json, regions_html, sarif
    from gate.result import stamp

    if result.error is not None:
        write_stopped_reports(result, settings.reports_dir, changed=settings.changed is not None)
        return
    _write_verdict(result, settings.reports_dir)
    out = settings.pages_dir
    shown = stamp(result.run)
    mutation_report = mutation_json.report(result, settings.root, sources or settings.root)
    render_report(out / "index.html", lambda: regions_html.render(result, shown))
    render_report(out / "mutation" / "mutation.json", lambda: json.dumps(mutation_report, indent=1) + "\n")
    render_report(out / "mutation" / "index.html",
                  lambda: mutation_html.render(mutation_report, f"gate: {settings.root.name}, {shown}"))
    render_report(out / "gate.sarif", lambda: sarif.render(result))
    render_report(out / "gate-junit.xml", lambda: junit.render(result))


def write_stopped_reports(result: GateResult, reports_dir: Path, changed: bool = False) -> None:
    """The reports of a run that an error stopped: the last run's verdict files and this kind of
    run's pages removed (none may be read as this run's), then its own `summary.json` and
    `gate-result.json` (what `gate merge` reads from each shard)."""
    clear_reports(reports_dir, changed=changed)
    _write_verdict(result, reports_dir)


def _write_verdict(result: GateResult, out: Path) -> None:
    import json

    from gate.report import summary
    from gate.result import to_dict

    render_report(out / "summary.json", lambda: summary.render(result))
    render_report(out / "gate-result.json", lambda: json.dumps(to_dict(result), indent=1) + "\n")
