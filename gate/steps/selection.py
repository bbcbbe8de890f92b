"""Mutants x regions x policy x coverage -> which mutants to run, with which tests, in which order."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gate import rules
from gate.levers import levers_off
from gate.policy import MutationContext, Policy, ask_pre_mutation
from gate.result import Mutant, Region, RegionReport
from gate.steps.measurement import CoverageResult
from gate.steps.cache import CachedResult
from gate.steps.regions import innermost, unit_spans

MESSAGE_OFF = "a message-only mutant (message_mutants = False in the policy)"


@dataclass(frozen=True)
class Candidate:
    mutant: Mutant
    region: Region
    tests: tuple[str, ...]
    """The tests that execute the mutated lines, the likeliest killers first."""
    skip_reason: str | None


def region_of(regions: Iterable[Region], mutant: Mutant) -> Region | None:
    """The innermost region holding all the changed lines; for a change that spans two adjacent
    regions (two handlers swapped), the region of its first line, provided every line is in one."""
    regions = list(regions)
    found = innermost(regions, mutant.file, mutant.start, mutant.end)
    if found is not None:
        return found
    if all(innermost(regions, mutant.file, line, line) for line in range(mutant.start, mutant.end + 1)):
        return innermost(regions, mutant.file, mutant.start, mutant.start)
    return None


def select(mutants: Iterable[Mutant], regions: list[Region], coverage: CoverageResult,
           policy: Policy, source_lines: Mapping[str, list[str]],
           previous: Mapping[str, CachedResult]) -> list[Candidate]:
    """Every in-region mutant, with the policy's verdict and its tests, in a stable order."""
    candidates = []
    # a test that killed a function's other mutants last time is the likeliest killer of this one
    killers_by_function: dict[tuple[str, str], Counter[str]] = {}
    for entry in previous.values():
        if entry.killed_by:
            killers_by_function.setdefault((entry.file, entry.unit), Counter())[entry.killed_by] += 1
    levers = levers_off()
    if "killer-first" in levers:
        previous, killers_by_function = {}, {}
    # with the `line-tests` lever off, a mutant runs every test that reaches its function (as mutmut does)
    spans = {} if "line-tests" not in levers else {
        (file, name): (start, end) for file, lines in source_lines.items()
        for name, start, end in unit_spans("\n".join(lines))}
    for mutant in mutants:
        region = region_of(regions, mutant)
        if region is None:
            continue
        lines = source_lines[mutant.file]
        context = MutationContext(
            filename=mutant.file, current_source_line=lines[mutant.start - 1] if mutant.start <= len(lines) else "",
            current_line_index=mutant.start - 1, region_kind=region.kind.value, function_name=region.function,
            operator=mutant.operator, mutant_name=mutant.name)
        skip = MESSAGE_OFF if mutant.message_only and not policy.message_mutants else ask_pre_mutation(policy, context)
        start, end = spans.get((mutant.file, mutant.unit), (mutant.start, mutant.end))
        tests = coverage.tests_for(mutant.file, start, end)
        first = previous[mutant.name].killed_by if mutant.name in previous else None
        usual = killers_by_function.get((mutant.file, mutant.unit), Counter())
        ordered = sorted(tests, key=lambda t: (t != first, -usual[t],
                                               coverage.measurement.durations.get(t, 0.0), t))
        candidates.append(Candidate(mutant, region, tuple(ordered), skip))
    return candidates


def with_unmutated(reports: Iterable[RegionReport], candidates: Iterable[Candidate], accept: dict[str, str]
                   ) -> list[RegionReport]:
    """The reports, with every region that mutmut can mutate but that got no mutant marked as not
    mutated (and accepted where the policy says so)."""
    with_mutants = {c.region.id for c in candidates}
    marked = []
    for report in reports:
        if report.not_mutated is None and report.region.id not in with_mutants:
            report = dataclasses.replace(
                report, accepted=rules.accepted(report.region, accept),
                not_mutated=(f"no mutant of {report.region.label} was kept: each mutation was a no-op or "
                             "equivalent, did not compile or is under `# pragma: no mutate`, or no enabled "
                             "operator applies"))
        marked.append(report)
    return marked
