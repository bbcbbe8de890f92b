"""The last step: what a run checked, judged by the rules (`gate.rules`), as the `GateResult`
every reporter renders. The one place a checked run's result is built (`gate merge` builds the
merged one here too)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gate import rules
from gate.policy import Policy
from gate.ratchet import Ratchet
from gate.result import GateResult, MutantOutcome, RegionReport


@dataclass(frozen=True)
class Checked:
    """What a run checked, before the rules judge it."""

    regions: tuple[RegionReport, ...] = ()
    mutants: tuple[MutantOutcome, ...] = ()
    suite_tests: tuple[str, ...] = ()
    mutmut_total: int = 0
    gate_total: int = 0
    notes: tuple[str, ...] = ()
    nothing_to_check: str | None = None
    sources: dict[str, str] = field(default_factory=dict)
    equivalent: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class About:
    """Which run it was: the project, what it guards, the shard, the kind and commit, the versions."""

    project: str
    guarded_paths: tuple[str, ...]
    shard: tuple[int, int] | None
    run: dict[str, str]
    versions: dict[str, str]


def judged(checked: Checked, policy: Policy, about: About, timings: dict[str, float],
           ratchet: Ratchet | None = None, whole: bool = True) -> GateResult:
    """`whole`: the run saw every finding (no --changed scope, no shard, mutants run), so it can
    tell that an adoption entry matches none."""
    regions, mutants, verdict, notes = rules.judge(checked.regions, checked.mutants, policy, ratchet, whole=whole)
    return GateResult(
        project=about.project, guarded_paths=about.guarded_paths, verdict=verdict, regions=regions,
        mutants=mutants, mutmut_total=checked.mutmut_total, gate_total=checked.gate_total, timings=timings,
        versions=about.versions, notes=(*checked.notes, *notes), shard=about.shard,
        suite_tests=checked.suite_tests, nothing_to_check=checked.nothing_to_check, run=about.run,
        sources=checked.sources, equivalent=checked.equivalent, adoption_file=ratchet.file if ratchet else None)
