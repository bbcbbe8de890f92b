"""What a developer reads after a run: its counts, a table of the regions with a finding (of every
region with `-v`; a pass shows none), every survivor with its name, place and diff, and the verdict
with the reason for each failure (the live progress before it is `gate.report.progress_line`)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from gate.report.wording import verdict_words
from gate.result import GateResult, MutantStatus, RegionReport

COLUMNS = (MutantStatus.KILLED, MutantStatus.SURVIVED, MutantStatus.TIMEOUT, MutantStatus.CRASHED,
           MutantStatus.NO_TESTS, MutantStatus.SKIPPED)
SHORT = {MutantStatus.KILLED: "killed", MutantStatus.SURVIVED: "survived", MutantStatus.TIMEOUT: "timeout",
         MutantStatus.CRASHED: "crashed", MutantStatus.NO_TESTS: "no tests", MutantStatus.SKIPPED: "skipped"}


SHOWN_TESTS = 3


def render(result: GateResult, width: int | None = None, verbose: bool = False) -> str:
    """What the terminal shows after a run. A pass is a summary of a few lines; a failure's region
    table has only the regions with a finding; `verbose` shows every region either way. With `width`
    (a terminal's), the table is drawn to fit it (rich), labels wrapped only where they must be;
    without (piped output), plain text."""
    lines = [_headline(result), ""]
    lines += _region_section(result, width, verbose)
    lines += _failing_mutants(result)
    # every timeout and crash on a line of its own, with what stopped it, whether it counts or not
    other = [m for m in result.mutants if m.status in (MutantStatus.TIMEOUT, MutantStatus.CRASHED,
                                                         MutantStatus.ERROR)]
    for m in other:
        lines.append(f"  {m.status.value}: {m.label}  {m.detail}")
    if other:
        lines.append("")
    for note in result.notes:
        lines.append(f"note: {note}")
    # what the adoption file holds: warned about, never failing until its entry expires
    for m in result.mutants:
        if m.failing and m.adopted:
            lines.append(f"WARN adopted ({m.adopted}): {m.failing}: {m.label} ({m.operator})")
    for report in result.regions:
        for problem in report.problems:
            if problem.adopted:
                lines.append(f"WARN adopted ({problem.adopted}): {problem.message}")
    for finding in result.verdict.findings:
        lines.append(f"FAIL [{finding.exit_code.value}] {finding.message}")
    lines.append(_verdict_line(result))
    return "\n".join(lines) + "\n"


def _region_section(result: GateResult, width: int | None, verbose: bool) -> list[str]:
    """The region table and the blank line after it: every region when `verbose`, none when the run
    passed (its headline counts them), else those with a finding and how many others need nothing."""
    if not result.regions or (result.verdict.passed and not verbose):
        return []
    shown = [r for r in result.regions if verbose or _has_finding(result, r)]
    lines: list[str] = []
    if shown:
        lines += (_fitted_region_table(result, shown, width) if width else _region_table(result, shown))
    rest = len(result.regions) - len(shown)
    if rest:  # a failure whose findings are all outside the regions (a test that runs none) shows no table
        lines.append(f"{rest} {'other ' if shown else ''}region{'s' if rest != 1 else ''} "
                     f"need{'s' if rest == 1 else ''} nothing; -v shows all {len(result.regions)}")
    return lines + [""]


def _has_finding(result: GateResult, report: RegionReport) -> bool:
    """It fails the gate: a problem of its own or a mutant in it (what the adoption file holds is warned below)."""
    return (any(not p.adopted for p in report.problems)
            or any(m.fails for m in result.mutants if m.region_id == report.region.id))


def _failing_mutants(result: GateResult) -> list[str]:
    failing = [m for m in result.mutants if m.fails]
    if not failing:
        return []
    lines = ["Mutants that fail the gate (fix the suite, not the policy):"]
    for m in failing:
        lines.append(f"  {m.label}  [{m.operator}] {m.failing}")
        if m.tests:
            more = len(m.tests) - SHOWN_TESTS
            lines.append(f"    ran: {', '.join(m.tests[:SHOWN_TESTS])}"
                         + (f" and {more} more (all of them are in gate-result.json and the mutation report)"
                            if more > 0 else ""))
        lines += ["    " + d for d in m.diff.rstrip("\n").splitlines()]
        if m.missing_check:
            lines.append(f"    missing check: {m.missing_check}")
        if m.suggestion:
            lines.append(f"    suggested check (verified): {m.suggestion.shown()}")
            lines.append(f"      apply it: python -m gate suggest --apply '{m.label}'")
    return lines + [""]


def _verdict_line(result: GateResult) -> str:
    word, meaning = verdict_words(result)
    return f"gate {word} ({meaning})"


def _headline(result: GateResult) -> str:
    if result.error is not None:
        return "gate: stopped before a verdict of its own"
    counts = result.counts
    parts = [f"{counts.regions} regions in {', '.join(result.guarded_paths)}"]
    if result.mutants:
        parts.append(f"{counts.selected} error-handling mutants ({result.mutmut_total} from mutmut's operators on "
                     f"the guarded files, {result.gate_total} from the gate's, before keeping in-region ones)")
        parts.append(", ".join(f"{counts.by_status[s]} {SHORT[s]}" for s in COLUMNS if counts.by_status.get(s)))
        if counts.cached_selected:
            parts.append(f"{counts.cached_selected} from the cache")
        if counts.message_only_selected:
            parts.append(f"{counts.message_only_selected} of them message-only")
    if result.equivalent:
        parts.append(f"{counts.equivalent_dropped} equivalent mutants dropped")
    if "total" in result.timings:
        parts.append(f"{result.timings['total']:.1f}s")
    if result.shard:
        parts.append(f"shard {result.shard[0]}/{result.shard[1]}")
    return "gate: " + "; ".join(parts)


HEADER = ["region", "kind", "ran", "tests", *(SHORT[s] for s in COLUMNS)]
FITTED = {MutantStatus.KILLED: "killed", MutantStatus.SURVIVED: "surv", MutantStatus.TIMEOUT: "t/o",
          MutantStatus.CRASHED: "crash", MutantStatus.NO_TESTS: "untested", MutantStatus.SKIPPED: "skip"}


def _rows(result: GateResult, shown: Sequence[RegionReport]) -> list[list[str]]:
    rows = []
    for report in shown:
        region = report.region
        counts = result.counts.by_region.get(region.id, {})
        ran = "yes" if report.entered else "NO"
        rows.append([f"{region.id} {region.label}", region.kind.value, ran, str(len(report.tests)),
                     *(str(counts[s]) if counts.get(s) else "." for s in COLUMNS)])
    return rows


def _fitted_region_table(result: GateResult, shown: Sequence[RegionReport], width: int) -> list[str]:
    """The region table for a terminal `width` columns wide: rich wraps the labels only where they
    do not fit, at spaces, so that each region's id stays whole on its first line."""
    from rich.console import Console
    from rich.table import Table

    # the label says the kind; the counts' headings are short, so the labels get the width
    rows = [[row[0], *row[2:]] for row in _rows(result, shown)]
    header = ["region", "ran", "tests", *(FITTED[s] for s in COLUMNS)]
    ids = max(len(report.region.id) for report in shown)
    counts = sum(max(len(header[i]), *(len(row[i]) for row in rows)) + 1 for i in range(1, len(header)))
    if counts + ids > width:  # too narrow for every column whole: the plain table, which is complete
        return _region_table(result, shown)
    table = Table(box=None, pad_edge=False, show_edge=False, expand=False, collapse_padding=True)
    table.add_column(header[0], overflow="fold", min_width=ids)
    for name in header[1:]:
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    console = Console(file=io.StringIO(), width=width, force_terminal=True, highlight=False)
    with console.capture() as captured:
        console.print(table)
    return [line.rstrip() for line in captured.get().rstrip("\n").splitlines()]


def _region_table(result: GateResult, shown: Sequence[RegionReport]) -> list[str]:
    header, rows = HEADER, _rows(result, shown)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*header)] + [fmt.format(*row) for row in rows]
