"""The mutant runs: the jobs go to mutmut's fork server (`gate.mutmut_adapter`), each outcome is
kept as it lands (in the result cache too, unless the machine may have caused it), and every job
must come back with one. The fork server may have been started beside the measurement (`Handover`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from gate.errors import InfrastructureError
from gate.mutmut_adapter import client
from gate.progress import Progress
from gate.result import MutantOutcome, MutantStatus
from gate.settings import Settings
from gate.steps.measurement import CoverageResult
from gate.steps.cache import CachedResult, ResultCache
from gate.steps.plan import Job, cpu_limit, outcome
from gate.wire.driver import Outcome

UNTRUSTED = (MutantStatus.ERROR, MutantStatus.CRASHED, MutantStatus.TIMEOUT)
"""Outcomes that may be the machine's doing (an OOM killer, a cancelled CI job, a loaded machine):
tested again next time rather than cached as a verdict they did not earn."""


def start_fork_server(settings: Settings, work: Path, files: list[str], tests: Iterable[str]) -> client.Run:
    """mutmut's fork server, which imports the mutated copy and collects the tests as it starts."""
    return client.Run(work, files=files, max_workers=settings.max_workers, tests=list(tests),
                      pytest_args=list(settings.pytest_args), memory_mb=settings.worker_memory_mb)


class Handover:
    """A fork server started beside the measurement: taken by the mutant runs, or let go at the end."""

    def __init__(self, server: client.Run | None) -> None:
        self.server = server

    def take(self) -> client.Run | None:
        server, self.server = self.server, None
        return server

    def __enter__(self) -> Handover:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:  # started for nothing: every mutant was known already
            self.server.abandon()


def test_all(handover: Handover, jobs: list[Job], outcomes: dict[str, MutantOutcome], settings: Settings,
             coverage: CoverageResult, cache: ResultCache, progress: Progress,
             start: Callable[[], client.Run]) -> None:
    """Test the jobs, if a run is needed: whenever a mutant is judged without a cached result, the
    forced-failure check runs, also when no mutant has tests (the suite may not import the mutated
    copy). `start` starts the fork server when none was started beside the measurement."""
    if not jobs and not any(o.status is MutantStatus.NO_TESTS for o in outcomes.values()):
        return
    progress.stage(f"testing {len(jobs)} mutants with {settings.max_workers} workers "
                   f"({len(outcomes)} known without a run)")
    run_jobs(handover.take() or start(), jobs, settings, coverage, cache, outcomes, progress)


def run_jobs(run: client.Run, jobs: list[Job], settings: Settings, coverage: CoverageResult,
             cache: ResultCache, outcomes: dict[str, MutantOutcome], progress: Progress) -> None:
    """Test `jobs`, adding each outcome to `outcomes` as it lands."""
    by_name = {j.mutant_job.name: j for j in jobs}

    def on_outcome(raw: Outcome) -> None:
        if raw.name not in by_name or raw.name in outcomes:
            raise InfrastructureError(f"mutmut reported an outcome for {raw.name}, which the gate did not "
                                      "send it or had an outcome for already")
        job = by_name[raw.name]
        done = outcomes[raw.name] = outcome(job.candidate, raw.status, killed_by=raw.killed_by,
                                            seconds=raw.seconds, detail=raw.detail)
        if raw.status not in UNTRUSTED:
            mutant = job.candidate.mutant
            cache.put(raw.name, CachedResult(key=job.key, file=mutant.file, unit=mutant.unit,
                                             status=raw.status.value, killed_by=raw.killed_by,
                                             seconds=raw.seconds, detail=raw.detail))
        progress.mutant(done, sum(1 for n in by_name if n in outcomes), len(by_name))

    all_tests = sorted({t for j in jobs for t in j.mutant_job.tests})
    check_limit = cpu_limit(sum(coverage.measurement.durations.get(t, 0.0) for t in all_tests), settings)
    try:
        run.test([j.mutant_job for j in jobs], check_cpu_limit=check_limit, on_outcome=on_outcome)
    finally:
        cache.save()  # what finished is kept, also after Ctrl-C or a crash
    # every mutant sent comes back with an outcome: one that does not has no verdict to give
    missing = [name for name in by_name if name not in outcomes]
    if missing:
        raise InfrastructureError(f"no outcome came back from mutmut for {len(missing)} of the {len(by_name)} "
                                  f"mutants sent (first: {missing[0]})")
