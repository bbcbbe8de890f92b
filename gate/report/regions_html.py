"""`reports/index.html`: the page a reviewer opens first. Its headline is what the gate measures,
the error-handling regions' own coverage (statements run and branches taken inside them), then
the same per file, then an index of the regions, each linked to its line in coverage.py's pages
and to its file in the mutation report. coverage.py's pages (`coverage/`) stay as they are, for
the whole files around the regions."""

from __future__ import annotations

import html
import posixpath
from collections import defaultdict
from urllib.parse import quote

from coverage.files import flat_rootname  # how coverage.py names a file's HTML page

from gate.result import GateResult, MutantStatus, RegionReport, region_coverage, stamp

SHORT_PROBLEMS = {"uncovered-handler": "never entered", "uncovered-region": "never run",
                  "untaken-branch": "a branch never taken", "region-not-mutated": "not mutated",
                  "unresolved-exception-type": "caught types unresolved"}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } .stamp { color: #666; }
table { border-collapse: collapse; margin: 1em 0; } th, td { padding: .25em .75em; border-bottom: 1px solid #ddd; }
th { text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: #b00020; font-weight: 600; }
"""


def render(result: GateResult) -> str:
    """The page, with the run and commit it shows (`stamp`)."""
    shown = stamp(result.run)
    total = region_coverage(result.regions)
    by_file: dict[str, list[RegionReport]] = defaultdict(list)
    for report in result.regions:
        by_file[report.region.file].append(report)
    if not result.regions:  # nothing was measured: no coverage pages to link to
        why = result.nothing_to_check or "no region is in this run's scope"
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>Nothing to check</title>"
                f"<style>{STYLE}</style></head><body><h1 id='headline'>Nothing to check: {html.escape(why)}</h1>"
                f"<p class='stamp'>{html.escape(shown)}</p></body></html>\n")
    routes = _mutant_routes(result)
    # a region coverage.py excludes (`# pragma: no cover`) has no statement to count: its being
    # never run shows here, not in the percentages
    entered = result.counts.entered
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Error-handling coverage: {_pct(total['statements_percent'])}</title><style>{STYLE}</style></head><body>",
        f"<h1 id='headline'>Error-handling coverage: {_pct(total['statements_percent'])} of region statements "
        f"({total['statements_run']}/{total['statements']}), {_pct(total['branches_percent'])} of region branches "
        f"({total['branches_taken']}/{total['branches']}), {entered} of {result.counts.regions} regions entered</h1>",
        f"<p class='stamp'>{html.escape(shown)}</p>",
        "<p><a href='coverage/index.html'>Whole-file coverage of the guarded files (coverage.py)</a> · "
        "<a href='mutation/index.html'>Mutants (mutation-testing report)</a></p>",
        "<h2>Per file</h2><table><tr><th>file</th><th>regions</th><th>statements</th><th>branches taken</th>"
        "<th>mutants killed</th></tr>",
    ]
    for file, reports in sorted(by_file.items()):
        cov = region_coverage(reports)
        parts.append(f"<tr><td>{html.escape(file)}</td><td class='n'>{len(reports)}</td>"
                     f"<td class='n'>{_ratio(cov['statements_run'], cov['statements'])}</td>"
                     f"<td class='n'>{_ratio(cov['branches_taken'], cov['branches'])}</td>"
                     f"<td class='n'>{_killed(result, reports)}</td></tr>")
    parts.append("</table><h2>Regions</h2><table><tr><th>region</th><th>kind</th><th>tests entering it</th>"
                 "<th>statements</th><th>branches taken</th><th>mutants killed</th><th>fails the gate</th></tr>")
    for report in result.regions:
        region = report.region
        cov = region_coverage([report])
        problems = _problems(result, report)
        page = f"coverage/{flat_rootname(region.file)}.html#t{region.start}"
        mutants = (f" (<a href='mutation/index.html#mutant/{html.escape(routes[region.file])}'>mutants</a>)"
                   if region.file in routes else "")
        parts.append(
            f"<tr><td><a href='{html.escape(page)}'>{html.escape(region.id)}</a> {html.escape(region.label)}"
            f"{mutants}</td><td>{region.kind.value}</td><td class='n'>{len(report.entering)}</td>"
            f"<td class='n'>{_ratio(cov['statements_run'], cov['statements'])}</td>"
            f"<td class='n'>{_ratio(cov['branches_taken'], cov['branches'])}</td>"
            f"<td class='n'>{_killed(result, [report])}</td>"
            f"<td class='{'bad' if problems else ''}'>{html.escape('; '.join(problems)) or 'no'}</td></tr>")
    parts.append("</table></body></html>\n")
    return "".join(parts)


def _problems(result: GateResult, report: RegionReport) -> list[str]:
    problems = [SHORT_PROBLEMS[p.rule] + (" (adopted)" if p.adopted else "") for p in report.problems]
    failing = result.counts.failing_by_region.get(report.region.id, 0)
    if failing:
        problems.append(f"{failing} mutant(s) not killed")
    held = result.counts.held_by_region.get(report.region.id, 0)
    if held:
        problems.append(f"{held} mutant(s) not killed, adopted")
    return problems


def _mutant_routes(result: GateResult) -> dict[str, str]:
    """The mutation report viewer's route to each file with mutants: its path without the folder
    every file of the report shares (the viewer drops it), each part URL-encoded."""
    files = sorted({m.file for m in result.mutants})
    if not files:
        return {}
    shared = posixpath.dirname(files[0]) if len(files) == 1 else posixpath.commonpath(files)
    return {f: "/".join(quote(part) for part in posixpath.relpath(f, shared or ".").split("/")) for f in files}


def _killed(result: GateResult, reports: list[RegionReport]) -> str:
    counts = result.counts.in_regions(r.region.id for r in reports)
    tested = sum(n for status, n in counts.items() if status not in (MutantStatus.NOT_RUN, MutantStatus.SKIPPED))
    return f"{counts[MutantStatus.KILLED]}/{tested}"


def _ratio(done: int, total: int) -> str:
    return f"{done}/{total}" + (f" ({100 * done / total:.1f}%)" if total else "")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"
