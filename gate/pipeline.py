"""One gate run, in the order of its data flow: regions, snapshot, coverage (the baseline),
mutants, selection, mutation run, verdict. `run_gate` returns the `GateResult` every reporter renders."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
import tokenize
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gate import __version__, changes, coverage_step, exception_types, imports, mutation, process, snapshot
from gate.cache import CachedResult, Fingerprints, ResultCache, build_fingerprints
from gate.errors import ConfigError, InfrastructureError
from gate.operators import OPERATORS
from gate.regions import Region, RegionKind, find_regions, iter_python_files, read_source
from gate.result import GateResult, MutantOutcome, MutantStatus, RegionReport, region_problems, stamp
from gate.selection import Candidate, select
from gate.settings import Settings
from gate.verdict import ExitCode, Finding, decide


class Progress(Protocol):
    def stage(self, text: str) -> None: ...
    def mutant(self, outcome: MutantOutcome, done: int, total: int) -> None: ...


class Silent:
    def stage(self, text: str) -> None:
        pass

    def mutant(self, outcome: MutantOutcome, done: int, total: int) -> None:
        pass


@dataclass
class _Clock:
    timings: dict[str, float] = field(default_factory=dict)

    def measure(self, name: str) -> Callable[[], None]:
        started = time.monotonic()

        def stop() -> None:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.monotonic() - started, 3)
        return stop


def guarded_files(settings: Settings, root: Path | None = None) -> list[str]:
    files = list(iter_python_files(root or settings.root, settings.guarded_paths))
    if not files:
        raise ConfigError(f"the guarded paths {', '.join(settings.guarded_paths)} hold no Python files")
    return files


def list_regions(settings: Settings) -> list[Region]:
    return find_regions(settings.root, guarded_files(settings), settings.policy.cleanup_functions)


def run_gate(settings: Settings, progress: Progress | None = None) -> GateResult:
    """Run the gate over the guarded files, or over what `settings.changed` touches. The caller
    holds the cache's lock (`gate.lock.exclusive`)."""
    started = time.monotonic()
    with contextlib.ExitStack() as beside:  # work that runs beside the mutants: the coverage HTML
        result = _run_gate(settings, progress or Silent(), beside)
    result.timings["total"] = round(time.monotonic() - started, 3)
    return result


def _run_gate(settings: Settings, progress: Progress, beside: contextlib.ExitStack) -> GateResult:
    clock = _Clock()
    this_run = run_info(settings)
    versions = {"gate": __version__, "python": sys.version.split()[0]}
    if not settings.only_coverage:
        versions["mutmut"] = mutation.check_mutmut()  # before anything slow: fail fast and closed
    environment = imports.environment_key()
    # the snapshot first: regions, coverage, mutants and reports all read this one copy of the tree,
    # however the user goes on editing theirs
    work = settings.cache_dir / "work"
    stop = clock.measure("snapshot")
    project = snapshot.project_files(settings.root, [settings.cache_dir, settings.reports_dir])
    snapshot.sync(settings.root, work, project)
    stop()
    files = guarded_files(settings, work)
    regions = find_regions(work, files, settings.policy.cleanup_functions)
    _check_regions_found(work, files, regions)
    if not regions:  # checked twice over: neither the finder nor the tokens see error handling
        return _empty_result(settings, versions, clock, NO_REGIONS, this_run)
    change = (changes.plan(settings.root, work, settings.changed, files, settings.tests,
                           own=(settings.cache_dir, settings.reports_dir))
              if settings.changed is not None else None)
    coverage_dir = settings.cache_dir / "coverage"

    subset = change.tests_to_run(coverage_step.load_unit_index(coverage_dir)) if change else None
    if subset == ():  # nothing guarded changed and no test did: nothing to check
        return _empty_result(settings, versions, clock, NOTHING_CHANGED, this_run)
    tests = settings.tests if subset is None else subset
    sources = {f: read_source(work / f) for f in files}
    # everything a baseline depends on: the whole snapshot and where it lies (coverage.py's data
    # holds absolute paths: a moved cache is rebuilt, never misread), what it measures, how the
    # suite runs, the environment
    run_key = snapshot.digest(work, project) + repr((str(work), files, tests, settings.pytest_args, environment))

    # mutants are generated beside the baseline (they need the regions, not the coverage), and
    # when the baseline really runs, mutmut's fork server starts warming up beside it too
    mutable = [r for r in regions if mutation.unmutatable_reason(r, settings.policy.safe_decorators) is None]
    prestart = not coverage_step.is_cached(coverage_dir, run_key)
    generating = None if settings.only_coverage else _Background(
        _generate, settings, work, project, files, regions, mutable, tests, environment, clock, prestart)
    try:
        progress.stage("running the suite under coverage (the baseline)")
        stop = clock.measure("coverage")
        coverage = coverage_step.measure(
            work, coverage_dir, tests=tests, pytest_args=settings.pytest_args,
            guarded_files=files, regions=regions, report_dir=settings.pages_dir, key=run_key,
            whole_suite=subset is None, workers=settings.max_workers)
        if subset is None:
            coverage_step.write_unit_index(coverage_dir, coverage, sources)
        stop()
        in_scope = {r.id for r in regions} if change is None else change.scope(regions, coverage)
        all_reports = _region_reports(coverage, settings)
        reports = [r for r in all_reports if r.region.id in in_scope]
        findings = coverage_findings(reports)
        notes = _change_notes(change, len(all_reports) - len(reports)) if change else []
        # the coverage HTML is written beside what follows; entered after any abandon, which
        # stops every child of the run
        html_report = coverage_step.html_report_beside(work, coverage_dir, settings.pages_dir, stamp(this_run))
        if generating is None or not reports:
            if generating is not None:
                generating.abandon()
            beside.enter_context(html_report)
            return GateResult(project=str(settings.root), guarded_paths=settings.guarded_paths,
                              verdict=decide(findings), regions=tuple(reports),
                              suite_tests=tuple(sorted(coverage.baseline.durations)),
                              timings=clock.timings, versions=versions, notes=tuple(notes), shard=settings.shard,
                              run=this_run,
                              nothing_to_check=NOTHING_CHANGED if change and not reports else None)

        beside.enter_context(html_report)
        progress.stage("generating mutants")
        generation, types, started_run = generating.result()
    except BaseException:
        if generating is not None:
            generating.abandon()
        raise
    try:
        notes += generation_notes(generation)
        reports = with_type_problems(reports, types, settings.policy.accept_unmutated)
        if mutable and not generation.mutants:
            raise InfrastructureError(
                f"no mutants were generated in {len(mutable)} error-handling regions that mutmut can mutate")

        cache = ResultCache(settings.cache_dir / "results.json").load()
        source_lines = {f: text.splitlines() for f, text in sources.items()}
        candidates = select(generation.mutants, [r.region for r in reports], coverage, settings.policy,
                            source_lines, cache.entries)
        # a region the suite can reach and mutmut can mutate, but that no mutant was kept for, is not
        # checked by anything: it fails like a region mutmut cannot mutate, unless accepted
        reports = with_unmutated(reports, candidates, settings.policy.accept_unmutated)
        findings = coverage_findings(reports)
        outcomes, jobs = _plan_all(candidates, settings, coverage,
                                   _fingerprints(settings, work, project, sources, environment, coverage), cache)
        stop = clock.measure("mutants")
        # whenever a mutant is judged without a cached result, the forced-failure check runs: also
        # when no mutant has tests (the suite may not import the mutated copy at all)
        if jobs or any(o.status is MutantStatus.NO_TESTS for o in outcomes.values()):
            progress.stage(f"testing {len(jobs)} mutants with {settings.max_workers} workers "
                           f"({len(outcomes)} known without a run)")
            run = started_run or _start_run(settings, work, files, tests)
            started_run = None
            _run_jobs(run, jobs, settings, coverage, cache, outcomes, progress)
        stop()
    finally:
        if started_run is not None:  # started for nothing: every mutant was known already
            started_run.abandon()

    all_outcomes, failures = judge_mutants([outcomes[c.mutant.name] for c in candidates], settings)
    findings += failures
    return GateResult(
        project=str(settings.root), guarded_paths=settings.guarded_paths, verdict=decide(findings),
        regions=tuple(reports), suite_tests=tuple(sorted(coverage.baseline.durations)),
        mutants=tuple(all_outcomes), mutmut_total=generation.mutmut_total,
        gate_total=generation.gate_total, timings=clock.timings, versions=versions, notes=tuple(notes),
        shard=settings.shard, run=this_run)


NOTHING_CHANGED = "no error-handling code changed"
NO_REGIONS = "the guarded files hold no error-handling code"


def _empty_result(settings: Settings, versions: dict[str, str], clock: _Clock, why: str,
                  run: dict[str, str]) -> GateResult:
    return GateResult(project=str(settings.root), guarded_paths=settings.guarded_paths, verdict=decide([]),
                      timings=clock.timings, versions=versions, nothing_to_check=why, shard=settings.shard, run=run)


def run_info(settings: Settings) -> dict[str, str]:
    """Which run this is, for every page it writes: full or `--changed`, the commit, the time."""
    kind = ("full run" if settings.changed is None
            else "--changed run (the staged changes)" if settings.changed == "" else f"--changed run against {settings.changed}")
    return {"kind": kind, "commit": snapshot.commit_of(settings.root, [settings.cache_dir, settings.reports_dir]) or "",
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def _change_notes(change: changes.ChangePlan, outside: int) -> list[str]:
    if change.widened:
        shown = "; ".join(change.widened[:5])
        more = f" and {len(change.widened) - 5} more" if len(change.widened) > 5 else ""
        return [f"--changed widened to every region: {shown}{more}"]
    return [f"{outside} regions outside this run's scope (--changed)"]


class _Background:
    """One function run on a thread while the main thread does something else; if the run is
    abandoned, its child processes are stopped with the others."""

    def __init__(self, fn: Callable[..., object], *args: object) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="gate")
        self._future = self._pool.submit(fn, *args)

    def result(self) -> Any:
        value = self._future.result()  # on an error or Ctrl-C here, the caller abandons the run
        self._pool.shutdown()
        return value

    def abandon(self) -> None:
        # children stopped, the thread let finish (it may start none), and whatever it started stopped
        with process.abandoning():
            self._pool.shutdown(wait=True)


def _start_run(settings: Settings, work: Path, files: list[str], tests: Iterable[str]) -> mutation.Run:
    return mutation.Run(work, files=files, max_workers=settings.max_workers, tests=list(tests),
                        pytest_args=list(settings.pytest_args), memory_mb=settings.worker_memory_mb)


def _generate(settings: Settings, work: Path, project: list[str], files: list[str], regions: list[Region],
              mutable: list[Region], tests: Iterable[str], environment: str, clock: _Clock, prestart: bool
              ) -> tuple[mutation.Generation, TypeResolution, mutation.Run | None]:
    """Resolve the exception types, then generate the mutants of every mutable region (also those
    outside a `--changed` scope, so that mutant names stay those of a full run); then, if asked,
    start mutmut's fork server, which imports the mutated copy."""
    stop = clock.measure("exception types")
    # a hierarchy may be defined in any module of the project, not only where it is caught
    modules = [f for f in project if f.endswith(".py") and not snapshot.is_test_module(f)]
    with_handlers = [f for f in files if _has_handlers(regions, f)]
    resolved, failed = exception_types.resolve(
        work, with_handlers, settings.cache_dir / "exception-types.json", key=environment, modules=modules,
        import_roots=imports.import_roots(work, files))
    types = TypeResolution(
        facts=resolved, failed=failed,
        caught={f: exception_types.caught_exprs_by_line(read_source(work / f)) for f in with_handlers},
        modules={f: imports.module_name(work, f) for f in with_handlers})
    stop()
    stop = clock.measure("generate")
    spans: dict[str, list[tuple[int, int, str]]] = {}
    for region in mutable:
        spans.setdefault(region.file, []).append((region.start, region.end, region.kind.value))
    generation = mutation.generate(
        work, files=files, regions=spans, max_workers=settings.max_workers, tests=list(tests),
        pytest_args=list(settings.pytest_args),
        operator_spec={"enabled": sorted(settings.policy.operators if settings.policy.operators is not None
                                         else OPERATORS), "exceptions": resolved})
    stop()
    return generation, types, _start_run(settings, work, files, tests) if prestart else None


def generation_notes(generation: mutation.Generation) -> list[str]:
    if not generation.dropped_invalid:
        return []
    return [f"{generation.dropped_invalid} gate mutants did not compile and were not tested "
            "(an operator bug: please report it)"]


@dataclass(frozen=True)
class TypeResolution:
    """What the exception-type step learned about each guarded file with handlers."""

    facts: dict[str, Any]
    """file -> the facts the type operators use, with `unresolved`: caught type expression -> why."""
    failed: dict[str, str]
    """file -> why importing it failed."""
    caught: dict[str, dict[int, list[str]]]
    """file -> line of an `except` -> the type expressions it names."""
    modules: dict[str, str]


def with_type_problems(reports: list[RegionReport], types: TypeResolution, accept: dict[str, str]
                       ) -> list[RegionReport]:
    """The reports, with every handler whose caught types could not be resolved marked (the type
    operators made no mutant of it: broaden, narrow, handler order), and accepted where the policy
    says so. `coverage_findings` turns an unaccepted one into an infrastructure failure (exit 4)."""
    marked = []
    for report in reports:
        region = report.region
        problem = None
        if region.kind is RegionKind.EXCEPT and region.file in types.failed:
            problem = f"{region.file}: cannot resolve the caught types: {types.failed[region.file]}"
        elif region.kind is RegionKind.EXCEPT and region.file in types.caught:
            unresolved = types.facts.get(region.file, {}).get("unresolved", {})
            whys = [(expr, unresolved[expr]) for expr in types.caught[region.file].get(region.start, [])
                    if expr in unresolved]
            if whys:
                expr, why = whys[0]
                problem = f"{region.id} cannot resolve the caught type {expr} in {types.modules[region.file]} ({why})"
        if problem is not None:
            report = dataclasses.replace(report, unresolved_types=problem,
                                         accepted=report.accepted or _accepted(region, accept))
        marked.append(report)
    return marked


def with_unmutated(reports: list[RegionReport], candidates: Iterable[Candidate], accept: dict[str, str]
                   ) -> list[RegionReport]:
    """The reports, with every region that mutmut can mutate but that got no mutant marked as not
    mutated (and accepted where the policy says so)."""
    with_mutants = {c.region.id for c in candidates}
    marked = []
    for report in reports:
        if report.not_mutated is None and report.region.id not in with_mutants:
            report = dataclasses.replace(
                report, accepted=_accepted(report.region, accept),
                not_mutated=(f"no mutant of {report.region.label} was kept: each mutation was a no-op, did not "
                             "compile or is under `# pragma: no mutate`, or no enabled operator applies"))
        marked.append(report)
    return marked


def _check_regions_found(root: Path, files: list[str], regions: list[Region]) -> None:
    """Fail closed when the finder finds nothing in files that do handle errors (a second,
    independent reading: the tokens)."""
    if regions:
        return
    keywords = {"except", "finally", "raise"}
    holding = []
    for rel in files:
        with open(root / rel, "rb") as handle:
            tokens = tokenize.tokenize(handle.readline)
            if any(t.type == tokenize.NAME and t.string in keywords for t in tokens):
                holding.append(rel)
    if holding:
        raise InfrastructureError(f"no error-handling regions found in {len(holding)} guarded files that use "
                                  f"except/finally/raise (first: {holding[0]})")


def _has_handlers(regions: list[Region], file: str) -> bool:
    return any(r.file == file and r.kind is RegionKind.EXCEPT for r in regions)


def _region_reports(coverage: coverage_step.CoverageResult, settings: Settings) -> list[RegionReport]:
    reports = []
    for rc in coverage.regions:
        reason = mutation.unmutatable_reason(rc.region, settings.policy.safe_decorators)
        accepted = _accepted(rc.region, settings.policy.accept_unmutated) if reason else None
        reports.append(RegionReport(region=rc.region, entered=rc.entered, tests=rc.tests,
                                    missing_branches=rc.missing_branches, entering=rc.entering,
                                    statements_run=rc.statements_run,
                                    statements_missed=rc.statements_missed, branches_taken=rc.branches_taken,
                                    not_mutated=reason, accepted=accepted))
    return reports


def _accepted(region: Region, accept: dict[str, str]) -> str | None:
    for key in (f"{region.file}:{region.function}", f"{region.file}:{region.unit}", region.id, region.file):
        if key in accept:
            return accept[key]
    return None


def coverage_findings(reports: Iterable[RegionReport]) -> list[Finding]:
    """The findings of the regions themselves (`region_problems`); one per cause: a module that
    cannot be imported is named once, not once per handler."""
    findings = [Finding(ExitCode.INFRASTRUCTURE if p.infrastructure else ExitCode.GATE_FAILED, p.message)
                for report in reports for p in region_problems(report)]
    return list(dict.fromkeys(findings))


def _fingerprints(settings: Settings, work: Path, project: list[str], sources: dict[str, str], environment: str,
                  coverage: coverage_step.CoverageResult) -> Fingerprints:
    guarded = set(sources)
    tests = {f for f in project if snapshot.is_test_module(f)}
    test_roots = {Path(f).parts[0] for f in tests if len(Path(f).parts) > 1}
    imported = set(coverage.baseline.imported)
    suite_files = {t.split("::", 1)[0] for t in coverage.baseline.durations} & tests
    # what the suite may read: the modules it imported, anything beside its tests, any data file
    support = [f for f in project if f not in guarded and f not in tests and not snapshot.is_documentation(f)
               and (not f.endswith(".py") or f in imported or Path(f).parts[0] in test_roots)]
    # everything else a mutant's outcome depends on: how its tests run, its limits, the environment
    settings_text = repr((settings.pytest_args, settings.tests, settings.worker_memory_mb, settings.timeout_multiplier,
                          settings.timeout_constant, __version__, environment))
    return build_fingerprints(
        sources=sources, tests_by_line=coverage.tests_by_line,
        shared_lines=coverage.shared_lines, test_sources={f: read_source(work / f) for f in suite_files},
        collected=coverage.baseline.durations, support=snapshot.digest(work, support), settings=settings_text)


Job = tuple[mutation.MutantJob, Candidate, str]
"""A mutant to test, its candidate, and the cache key its result will be stored under."""


def _plan_all(candidates: list[Candidate], settings: Settings, coverage: coverage_step.CoverageResult,
              fingerprints: Fingerprints, cache: ResultCache) -> tuple[dict[str, MutantOutcome], list[Job]]:
    """The outcomes known before testing (skipped, untested, cached, another shard's), and the jobs."""
    outcomes: dict[str, MutantOutcome] = {}
    jobs: list[Job] = []
    mine = shard_of(candidates, settings.shard)
    for candidate in candidates:
        name = candidate.mutant.name
        if name not in mine:
            outcomes[name] = _outcome(candidate, MutantStatus.NOT_RUN, detail=ANOTHER_SHARD)
        elif candidate.skip_reason is not None:
            outcomes[name] = _outcome(candidate, MutantStatus.SKIPPED, detail=candidate.skip_reason)
        elif not candidate.tests:
            outcomes[name] = _outcome(candidate, MutantStatus.NO_TESTS, detail="no test executes these lines")
        else:
            m = candidate.mutant
            key = fingerprints.key(name, m.file, m.unit, m.start, m.diff, candidate.tests)
            cached = cache.get(name, key)
            if cached is not None:
                outcomes[name] = _outcome(candidate, MutantStatus(cached.status), killed_by=cached.killed_by,
                                          seconds=cached.seconds, detail=cached.detail, cached=True)
            else:
                estimated = sum(coverage.baseline.durations.get(t, 0.0) for t in candidate.tests)
                last = cache.entries.get(name)
                job = mutation.MutantJob(name, candidate.tests, _cpu_limit(estimated, settings), estimated,
                                         group=f"{m.file}:{m.unit}", first=last.killed_by if last else None)
                jobs.append((job, candidate, key))
    return outcomes, jobs


def _cpu_limit(estimated: float, settings: Settings) -> int:
    """CPU seconds for a test run whose baseline took `estimated`; the wall limit is half of it."""
    return math.ceil((estimated + settings.timeout_constant) * settings.timeout_multiplier * 2)


ANOTHER_SHARD = "tested by another shard"


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


def _run_jobs(run: mutation.Run, jobs: list[Job], settings: Settings, coverage: coverage_step.CoverageResult,
              cache: ResultCache, outcomes: dict[str, MutantOutcome], progress: Progress) -> None:
    by_name = {job.name: (candidate, key) for job, candidate, key in jobs}

    def on_outcome(raw: mutation.RawOutcome) -> None:
        if raw.name not in by_name or raw.name in outcomes:
            raise InfrastructureError(f"mutmut reported an outcome for {raw.name}, which the gate did not "
                                      "send it or had an outcome for already")
        candidate, key = by_name[raw.name]
        outcome = _outcome(candidate, raw.status, killed_by=raw.killed_by, seconds=raw.seconds,
                           detail=raw.detail)
        outcomes[raw.name] = outcome
        # a crash or a timeout may be the machine's doing (an OOM killer, a cancelled CI job, a
        # loaded machine): test it again next time rather than keep a verdict it did not earn
        if raw.status not in (MutantStatus.ERROR, MutantStatus.CRASHED, MutantStatus.TIMEOUT):
            cache.put(raw.name, CachedResult(key=key, file=candidate.mutant.file, unit=candidate.mutant.unit,
                                             status=raw.status.value, killed_by=raw.killed_by,
                                             seconds=raw.seconds, detail=raw.detail))
        progress.mutant(outcome, sum(1 for n in by_name if n in outcomes), len(by_name))

    all_tests = sorted({t for job, _, _ in jobs for t in job.tests})
    check_limit = _cpu_limit(sum(coverage.baseline.durations.get(t, 0.0) for t in all_tests), settings)
    try:
        run.test([job for job, _, _ in jobs], check_cpu_limit=check_limit, on_outcome=on_outcome)
    finally:
        cache.save()  # what finished is kept, also after Ctrl-C or a crash
    # every mutant sent comes back with an outcome: one that does not has no verdict to give
    missing = [name for name in by_name if name not in outcomes]
    if missing:
        raise InfrastructureError(f"no outcome came back from mutmut for {len(missing)} of the {len(by_name)} "
                                  f"mutants sent (first: {missing[0]})")


def _outcome(candidate: Candidate, status: MutantStatus, **fields: object) -> MutantOutcome:
    m = candidate.mutant
    described = OPERATORS if m.origin == "gate" else mutation.MUTMUT_OPERATORS
    return MutantOutcome(name=m.name, file=m.file, unit=m.unit, region_id=candidate.region.id,
                         operator=m.operator, origin=m.origin, start=m.start, end=m.end, original=m.original,
                         replacement=m.replacement, diff=m.diff, status=status, tests=candidate.tests,
                         operator_description=described.get(m.operator, f"mutmut's {m.operator} operator"),
                         **fields)  # type: ignore[arg-type]


def judge_mutants(outcomes: Iterable[MutantOutcome], settings: Settings) -> tuple[list[MutantOutcome], list[Finding]]:
    """The outcomes, each marked `failing` when it fails the gate under the policy, and the
    findings: the one place that decides, so the verdict and every report agree."""
    judged, findings = [], []
    for m in outcomes:
        finding = _mutant_finding(m, settings)
        if finding is not None:
            findings.append(finding)
        judged.append(dataclasses.replace(m, failing=finding is not None))
    return judged, findings


def _mutant_finding(m: MutantOutcome, settings: Settings) -> Finding | None:
    where = f"{m.file}:{m.start}"
    crash = settings.policy.crash_counts_as
    if m.status is MutantStatus.SURVIVED:
        return Finding(ExitCode.GATE_FAILED, f"survived: {m.name} at {where} ({m.operator})")
    if m.status is MutantStatus.NO_TESTS:
        return Finding(ExitCode.GATE_FAILED, f"no test reaches: {m.name} at {where} ({m.operator})")
    if m.status is MutantStatus.TIMEOUT and settings.policy.timeout_counts_as == "survived":
        return Finding(ExitCode.GATE_FAILED, f"timed out (counted as survived by policy): {m.name}")
    if m.status is MutantStatus.CRASHED and crash != "killed":
        code = ExitCode.INFRASTRUCTURE if crash == "error" else ExitCode.GATE_FAILED
        return Finding(code, f"crashed: {m.name} at {where}: {m.detail}")
    if m.status is MutantStatus.ERROR:
        return Finding(ExitCode.INFRASTRUCTURE, f"could not test {m.name}: {m.detail}")
    return None
