"""`reports/index.html`: the page a reviewer opens first. It leads with the verdict (PASSED, FAILED
or ERROR, its exit code and reason, the run and commit it shows), then the findings to fix, each
linked to its region's row and to its mutant's diff, explanation and suggested check further down;
then what the gate measures, the error-handling regions' own coverage (statements run and branches
taken inside them), the same per file, and an index of the regions, each linked to its line in
coverage.py's pages and to its file in the mutation report; the regions that need nothing fold
away. coverage.py's pages (`coverage/`) stay as they are, for the whole files around the regions.

A page kept from an earlier run, when a later run stopped before it checked anything, gets a
banner saying so (`marked_earlier`) in the place every page keeps for it."""

from __future__ import annotations

import html
import posixpath
import re
from collections import defaultdict
from urllib.parse import quote

from coverage.files import flat_rootname  # how coverage.py names a file's HTML page

from gate.result import GateResult, MutantOutcome, MutantStatus, RegionReport, region_coverage, stamp
from gate.report.wording import verdict_words
from gate.verdict import PRIORITY

SHORT_PROBLEMS = {"uncovered-handler": "never entered", "uncovered-region": "never run",
                  "untaken-branch": "a branch never taken", "region-not-mutated": "not mutated",
                  "unresolved-exception-type": "caught types unresolved"}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; } .stamp { color: #666; }
table { border-collapse: collapse; margin: 1em 0; } th, td { padding: .25em .75em; border-bottom: 1px solid #ddd; }
th { text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: #b00020; font-weight: 600; } td.bad { background: #fdecea; }
.verdict { border: 3px solid; border-radius: 6px; padding: .5em 1em; margin: 0 0 1em; }
.verdict h1 { font-size: 2em; margin: .2em 0; } .verdict p { margin: .3em 0; }
.verdict.passed { border-color: #1e7e34; background: #e6f4ea; } .verdict.passed h1 { color: #1e7e34; }
.verdict.failed { border-color: #b00020; background: #fdecea; } .verdict.failed h1 { color: #b00020; }
.verdict.error { border-color: #8a4b00; background: #fff3e0; } .verdict.error h1 { color: #8a4b00; }
.later { border: 3px dashed #8a4b00; background: #fff3e0; padding: .5em 1em; margin: 0 0 1em; }
#findings li { margin: .2em 0; } pre.diff { background: #f6f8fa; padding: .5em; overflow-x: auto; }
details { margin: .5em 0; } summary { cursor: pointer; }
"""
EXPLAINED = {"no difference": "the probe saw no difference a test could check (it may be equivalent)",
             "not observed": "what it changes is not observable from the tests that run it",
             "budget": "not explained: the explain budget was spent before it was reached",
             "failed": "not explained: the probe failed", "off": "not explained: explanations are off"}
"""A survivor's explanation, by kind (`EXPLANATION_KINDS`), where it names no missing check."""
LATER = ("<!--gate:later-->", "<!--/gate:later-->")
"""Where a banner goes when a later run stopped before it checked anything (`marked_earlier`)."""


def render(result: GateResult) -> str:
    """The page: the verdict first, with the run and commit it shows (`stamp`)."""
    word, _ = verdict_words(result)
    if result.error is not None:  # stopped before a verdict of its own: its reason is all there is
        return _page(f"gate {word}", [_verdict_box(result), _findings(result)])
    if not result.regions:  # nothing was measured: no coverage pages to link to
        # the verdict's reason says why when the run knew; a result without one still says it
        why = ("" if result.nothing_to_check
               else "<h2 id='headline'>Nothing to check: no region is in this run's scope</h2>")
        return _page(f"gate {word}: nothing to check", [_verdict_box(result), _findings(result), why])
    total = region_coverage(result.regions)
    # a region coverage.py excludes (`# pragma: no cover`) has no statement to count: its being
    # never run shows here, not in the percentages
    headline = (f"Error-handling coverage: {_pct(total['statements_percent'])} of region statements "
                f"({total['statements_run']}/{total['statements']}), {_pct(total['branches_percent'])} of region "
                f"branches ({total['branches_taken']}/{total['branches']}), {result.counts.entered} of "
                f"{result.counts.regions} regions entered")
    return _page(f"gate {word}: error-handling coverage {_pct(total['statements_percent'])}", [
        _verdict_box(result), _findings(result), f"<h2 id='headline'>{headline}</h2>",
        "<p><a href='coverage/index.html'>Whole-file coverage of the guarded files (coverage.py)</a> · "
        "<a href='mutation/index.html'>Mutants (mutation-testing report)</a></p>",
        _per_file(result), _regions(result), _mutants(result)])


def marked_earlier(page: str, latest: GateResult | None, when: str = "") -> str | None:
    """`page`, a front page of an earlier run, with a banner at its top saying that the latest run
    (`latest`, stopped at `when` before it checked anything) is not what it shows, or with no
    banner for `latest` None (a later run that did check, a `--changed` one beside it); None for
    a page with no place for one (not this module's)."""
    start, end = LATER
    if page.count(start) != 1 or page.count(end) != 1 or page.index(start) > page.index(end):
        return None
    banner = ""
    if latest is not None:
        word, reason = verdict_words(latest)
        why = "; ".join(f.message for f in latest.verdict.findings)
        banner = (f"<div id='later' class='later'><strong>Not the latest run.</strong> The latest run, at "
                  f"{html.escape(when)}, stopped before it checked anything: gate {word} ({html.escape(reason)}): "
                  f"{html.escape(why)}. Its verdict is in the reports folder's summary.json; this page, and every "
                  f"page beside it, shows the earlier run below.</div>")
    return page[:page.index(start) + len(start)] + banner + page[page.index(end):]


def _page(title: str, body: list[str]) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{LATER[0]}{LATER[1]}{''.join(body)}</body></html>\n")


def _verdict_box(result: GateResult) -> str:
    word, reason = verdict_words(result)
    kind = "error" if result.error is not None else "passed" if result.verdict.passed else "failed"
    return (f"<header id='verdict' class='verdict {kind}'><h1>gate {html.escape(word)}</h1>"
            f"<p class='reason'>{html.escape(reason)}</p>"
            f"<p class='stamp'>{html.escape(stamp(result.run))}</p></header>")


def _findings(result: GateResult) -> str:
    """The verdict's findings, most serious first, each linked to what it is about on this page."""
    findings = sorted(result.verdict.findings, key=lambda f: PRIORITY.index(f.exit_code))
    if not findings:
        return ""
    regions = {p.message: r.region.id for r in result.regions for p in r.problems if not p.adopted}
    mutants = {m.label: m for m in result.mutants if m.fails}
    items = []
    for finding in findings:
        text = html.escape(finding.message)
        links = []
        if finding.message in regions:
            links.append(f"<a href='#{_region_anchor(regions[finding.message])}'>its region</a>")
        mutant = next((m for label, m in mutants.items() if _names(finding.message, label)), None)
        if mutant is not None:
            links += [f"<a href='#{_mutant_anchor(mutant)}'>diff and what to check</a>",
                      f"<a href='#{_region_anchor(mutant.region_id)}'>its region</a>"]
        items.append(f"<li class='bad'>[exit {finding.exit_code.value}] {text}"
                     + (f" ({' · '.join(links)})" if links else "") + "</li>")
    return f"<section id='findings'><h2>To fix: {len(findings)}</h2><ol>{''.join(items)}</ol></section>"


def _names(message: str, label: str) -> bool:
    """Whether a finding's message is about the mutant `label` names (`survived: <label> (<operator>)`,
    `crashed: <label>: <detail>`): the label whole, so that `#1` is not `#10`."""
    return re.search(rf"(?:^|[ :]){re.escape(label)}(?=$|[ :(])", message) is not None


def _per_file(result: GateResult) -> str:
    by_file: dict[str, list[RegionReport]] = defaultdict(list)
    for report in result.regions:
        by_file[report.region.file].append(report)
    rows = ["<h2>Per file</h2><table><tr><th>file</th><th>regions</th><th>regions failing</th><th>statements</th>"
            "<th>branches taken</th><th>mutants killed</th></tr>"]
    for file, reports in sorted(by_file.items()):
        cov = region_coverage(reports)
        failing = sum(1 for r in reports if _problems(result, r)[0])
        rows.append(f"<tr><td>{html.escape(file)}</td><td class='n'>{len(reports)}</td>"
                    f"{_cell(str(failing), bool(failing))}"
                    f"{_coverage_cells(cov)}"
                    f"{_killed(result, reports)}</tr>")
    return "".join(rows) + "</table>"


def _regions(result: GateResult) -> str:
    """The regions that fail the gate or carry an adopted finding, then, folded, those that need nothing."""
    routes = _mutant_routes(result)
    header = ("<table><tr><th>region</th><th>kind</th><th>tests entering it</th><th>statements</th>"
              "<th>branches taken</th><th>mutants killed</th><th>fails the gate</th></tr>")
    shown, folded = [], []
    for report in result.regions:
        region = report.region
        cov = region_coverage([report])
        failing, problems = _problems(result, report)
        page = f"coverage/{flat_rootname(region.file)}.html#t{region.start}"
        mutants = (f" (<a href='mutation/index.html#mutant/{html.escape(routes[region.file])}'>mutants</a>)"
                   if region.file in routes else "")
        row = (f"<tr id='{_region_anchor(region.id)}'><td><a href='{html.escape(page)}'>{html.escape(region.id)}</a> "
               f"{html.escape(region.label)}{mutants}</td><td>{region.kind.value}</td>"
               f"{_cell(str(len(report.entering)), not report.entered)}"
               f"{_coverage_cells(cov)}"
               f"{_killed(result, [report])}"
               f"<td class='{'bad' if failing else ''}'>{html.escape('; '.join(problems)) or 'no'}</td></tr>")
        (shown if problems else folded).append(row)
    parts = ["<h2>Regions</h2>"]
    if shown:
        parts.append(header + "".join(shown) + "</table>")
    if folded:
        parts.append(f"<details id='passing-regions'><summary>{len(folded)} region{'s' if len(folded) != 1 else ''} "
                     f"that need nothing</summary>{header}{''.join(folded)}</table></details>")
    return "".join(parts)


def _mutants(result: GateResult) -> str:
    """Each mutant that fails the gate: its diff, what its test missed and the check suggested for it."""
    failing = [m for m in result.mutants if m.fails]
    if not failing:
        return ""
    routes = _mutant_routes(result)
    parts = [f"<h2 id='mutants'>Mutants that fail the gate: {len(failing)}</h2>"]
    for m in failing:
        extra = "".join([
            f"<p>What its tests did not check: {html.escape(m.missing_check)}</p>" if m.missing_check else
            f"<p>Explanation: {html.escape(EXPLAINED[m.explained])}</p>" if m.explained in EXPLAINED else "",
            (f"<p>Suggested check (verified): <code>{html.escape(m.suggestion.shown())}</code>; apply it with "
             f"<code>python -m gate suggest --apply '{html.escape(m.label)}'</code></p>") if m.suggestion else "",
            f"<p>Run by: {html.escape(', '.join(m.tests[:3]))}{' …' if len(m.tests) > 3 else ''}</p>"
            if m.tests else ""])
        parts.append(f"<details open id='{_mutant_anchor(m)}'><summary class='bad'>{html.escape(m.label)} "
                     f"({html.escape(m.operator)}): {html.escape(m.failing or '')}</summary>"
                     f"<p>Region <a href='#{_region_anchor(m.region_id)}'>{html.escape(m.region_id)}</a> "
                     f"(<a href='mutation/index.html#mutant/{html.escape(routes[m.file])}'>its file in the mutation "
                     f"report</a>); {html.escape(m.operator)}: {html.escape(m.operator_description)}</p>{extra}"
                     f"<pre class='diff'>{html.escape(m.diff)}</pre></details>")
    return "".join(parts)


def _problems(result: GateResult, report: RegionReport) -> tuple[bool, list[str]]:
    """Whether the region fails the gate, and every way it fails it or carries an adopted finding."""
    problems = [SHORT_PROBLEMS[p.rule] + (" (adopted)" if p.adopted else "") for p in report.problems]
    failing = result.counts.failing_by_region.get(report.region.id, 0)
    if failing:
        problems.append(f"{failing} mutant(s) not killed")
    held = result.counts.held_by_region.get(report.region.id, 0)
    if held:
        problems.append(f"{held} mutant(s) not killed, adopted")
    return bool(failing or any(not p.adopted for p in report.problems)), problems


def _region_anchor(region_id: str) -> str:
    return html.escape("region-" + quote(region_id, safe="/:._-"))


def _mutant_anchor(m: MutantOutcome) -> str:
    return html.escape("mutant-" + quote(m.label, safe="/:._-"))


def _mutant_routes(result: GateResult) -> dict[str, str]:
    """The mutation report viewer's route to each file with mutants: its path without the folder
    every file of the report shares (the viewer drops it), each part URL-encoded."""
    files = sorted({m.file for m in result.mutants})
    if not files:
        return {}
    shared = posixpath.dirname(files[0]) if len(files) == 1 else posixpath.commonpath(files)
    return {f: "/".join(quote(part) for part in posixpath.relpath(f, shared or ".").split("/")) for f in files}


def _killed(result: GateResult, reports: list[RegionReport]) -> str:
    """The `mutants killed` cell, marked where a mutant of these regions fails the gate."""
    counts = result.counts.in_regions(r.region.id for r in reports)
    tested = sum(n for status, n in counts.items() if status not in (MutantStatus.NOT_RUN, MutantStatus.SKIPPED))
    failing = sum(result.counts.failing_by_region.get(r.region.id, 0) for r in reports)
    return _cell(f"{counts[MutantStatus.KILLED]}/{tested}", bool(failing))


def _coverage_cells(cov: dict) -> str:
    """The statements and branches cells, each marked where some were not run or taken."""
    statements = _cell(_ratio(cov["statements_run"], cov["statements"]), cov["statements_run"] < cov["statements"])
    return statements + _cell(_ratio(cov["branches_taken"], cov["branches"]), cov["branches_taken"] < cov["branches"])


def _cell(text: str, bad: bool) -> str:
    """A count's cell; one that fails the gate is marked by more than its colour."""
    return f"<td class='n bad'>✗ {text}</td>" if bad else f"<td class='n'>{text}</td>"


def _ratio(done: int, total: int) -> str:
    return f"{done}/{total}" + (f" ({100 * done / total:.1f}%)" if total else "")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"
