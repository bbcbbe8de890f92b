"""Every report a run writes, by its path, and the renderer that writes it: `gate.publish` writes
them, clears them, and knows the reports folder's contents from this list alone.

Each renderer is a module's `render(result) -> str`, deriving whatever it shows from the result.
The verdict files go in the reports folder itself and are written for every run, a stopped one's
too (CI reads them, `gate merge` reads `gate-result.json`); the pages go in the pages folder (the
reports folder, or `changed/` in it for a `--changed` run). A run that an error stopped writes of
the pages only what CI reads too, its SARIF and JUnit, which say it stopped and why: none of the
run before may be taken for its own. coverage.py writes its own pages there too (`COVERAGE_PAGES`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gate.report import junit, mutation_html, mutation_json, regions_html, result_json, sarif, summary
from gate.result import GateResult


@dataclass(frozen=True)
class Report:
    path: str
    """Where it goes, relative to its folder, with forward slashes."""
    render: Callable[[GateResult], str]
    verdict: bool = False
    """A verdict file (in the reports folder, for every run) rather than a page."""
    stopped: bool = False
    """A page a stopped run writes too (in its pages folder): CI reads it."""


REPORTS: tuple[Report, ...] = (
    Report("summary.json", summary.render, verdict=True),
    Report("gate-result.json", result_json.render, verdict=True),
    Report("index.html", regions_html.render),  # FRONT_PAGE
    Report("mutation/mutation.json", mutation_json.render),
    Report("mutation/index.html", mutation_html.render),
    Report("gate.sarif", sarif.render, stopped=True),
    Report("gate-junit.xml", junit.render, stopped=True),
)
VERDICT_REPORTS = tuple(report for report in REPORTS if report.verdict)
STOPPED_REPORTS = tuple(report for report in REPORTS if report.verdict or report.stopped)
"""What a run that an error stopped writes."""
PAGE_REPORTS = tuple(report for report in REPORTS if not report.verdict)

COVERAGE_PAGES = ("coverage.json", "coverage")
"""What coverage.py writes in the pages folder (`gate.steps.measurement`): whole-file coverage."""

VERDICT_FILES = tuple(report.path for report in VERDICT_REPORTS)
PAGES = (*dict.fromkeys(report.path.split("/", 1)[0] for report in PAGE_REPORTS), *COVERAGE_PAGES)
"""The pages folder's entries (files and folders) that are the gate's: anything else there is the user's."""

FRONT_PAGE = "index.html"
"""The page a reviewer opens first: where a kept page says it is an earlier run's (`marked_earlier`)."""
marked_earlier = regions_html.marked_earlier


def written(result: GateResult) -> tuple[Report, ...]:
    """The reports a run with `result` writes: all of them, or where an error stopped it before a
    verdict of its own (stopped shards, merged, too) the verdict files and its SARIF and JUnit."""
    return REPORTS if result.error is None else STOPPED_REPORTS
