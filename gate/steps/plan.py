"""The selected mutants -> the outcomes known without a run (skipped, untested, cached, another
shard's) and the jobs for mutmut: each with its tests, time limit and cache key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gate import __version__, scenario
from gate.mutmut_adapter.client import MUTMUT_OPERATORS
from gate.operators import OPERATORS
from gate.result import ANOTHER_SHARD, MutantOutcome, MutantStatus
from gate.settings import Settings
from gate.steps import snapshot
from gate.steps.measurement import CoverageResult
from gate.steps.cache import CacheKeys, ResultCache, build_cache_keys
from gate.steps.regions import read_source
from gate.steps.selection import Candidate
from gate.wire.driver import MutantJob


@dataclass(frozen=True)
class Job:
    mutant_job: MutantJob
    """What mutmut's driver is sent."""
    candidate: Candidate
    key: str
    """The cache key its result will be stored under."""


def plan(candidates: list[Candidate], settings: Settings, coverage: CoverageResult, cache_keys: CacheKeys,
         cache: ResultCache) -> tuple[dict[str, MutantOutcome], list[Job], dict[str, str]]:
    """The outcomes known before testing, by mutant name, the jobs, and the result key of every
    mutant with tests (what its explanation is cached under too)."""
    outcomes: dict[str, MutantOutcome] = {}
    jobs: list[Job] = []
    keys: dict[str, str] = {}
    mine = shard_of(candidates, settings.shard)
    for candidate in candidates:
        name = candidate.mutant.name
        if name not in mine:
            outcomes[name] = outcome(candidate, MutantStatus.NOT_RUN, detail=ANOTHER_SHARD)
        elif candidate.skip_reason is not None:
            outcomes[name] = outcome(candidate, MutantStatus.SKIPPED, detail=candidate.skip_reason)
        elif not candidate.tests:
            outcomes[name] = outcome(candidate, MutantStatus.NO_TESTS, detail="no test executes these lines")
        else:
            m = candidate.mutant
            key = keys[name] = cache_keys.key(m, candidate.tests)
            cached = cache.get(name, key)
            if cached is not None:
                outcomes[name] = outcome(candidate, MutantStatus(cached.status), killed_by=cached.killed_by,
                                         seconds=cached.seconds, detail=cached.detail, cached=True)
            else:
                estimated = sum(coverage.measurement.durations.get(t, 0.0) for t in candidate.tests)
                last = cache.entries.get(name)
                job = MutantJob(name, candidate.tests, cpu_limit(estimated, settings), estimated,
                                group=f"{m.file}:{m.unit}", first=last.killed_by if last else None)
                jobs.append(Job(job, candidate, key))
    return outcomes, jobs, keys


def outcome(candidate: Candidate, status: MutantStatus, **fields: object) -> MutantOutcome:
    m = candidate.mutant
    described = OPERATORS if m.origin == "gate" else MUTMUT_OPERATORS
    return MutantOutcome.of(m, region_id=candidate.region.id, region_shape=candidate.region.shape, status=status,
                            tests=candidate.tests,
                            operator_description=described.get(m.operator, f"mutmut's {m.operator} operator"),
                            **fields)


def cpu_limit(estimated: float, settings: Settings) -> int:
    """CPU seconds for a test run whose tests took `estimated` (its multiplier and constant on the
    wall clock); the wall-clock limit is `gate.scenario.wall_limit` of it."""
    return scenario.cpu_limit((estimated + settings.timeout_constant) * settings.timeout_multiplier)


def shard_of(candidates: list[Candidate], shard: tuple[int, int] | None) -> set[str]:
    """The names of the k-th of n shares: balanced by the number of tests each mutant runs, and
    decided by nothing that differs between machines (names and tests, not timings or caches)."""
    if shard is None:
        return {c.mutant.name for c in candidates}
    k, n = shard
    loads = [0] * n
    mine = set()
    for candidate in sorted(candidates, key=lambda c: (-len(c.tests), c.mutant.name)):
        share = min(range(n), key=lambda i: (loads[i], i))
        loads[share] += max(1, len(candidate.tests))
        if share == k - 1:
            mine.add(candidate.mutant.name)
    return mine


def cache_keys(settings: Settings, work: Path, project: list[str], sources: dict[str, str], environment: str,
               coverage: CoverageResult) -> CacheKeys:
    """Everything a mutant's cached result depends on (`gate.steps.cache`)."""
    guarded = set(sources)
    tests = {f for f in project if snapshot.is_test_module(f)}
    test_roots = {Path(f).parts[0] for f in tests if len(Path(f).parts) > 1}
    imported = set(coverage.measurement.imported)
    suite_files = {t.split("::", 1)[0] for t in coverage.measurement.durations} & tests
    # what the suite may read: the modules it imported, anything beside its tests, any data file;
    # a module named like a test module that holds no collected test (assertion helpers) is one too
    support = [f for f in project if f not in guarded and f not in suite_files and not snapshot.is_documentation(f)
               and (not f.endswith(".py") or f in imported or Path(f).parts[0] in test_roots)]
    # everything else a mutant's outcome depends on: how its tests run, its limits, the environment
    settings_text = repr((settings.pytest_args, settings.tests, settings.worker_memory_mb, settings.timeout_multiplier,
                          settings.timeout_constant, __version__, environment, coverage.measurement.environment))
    return build_cache_keys(
        sources=sources, tests_by_line=coverage.tests_by_line,
        shared_lines=coverage.shared_lines, test_sources={f: read_source(work / f) for f in suite_files},
        collected=coverage.measurement.durations, support=snapshot.digest(work, support), settings=settings_text)
