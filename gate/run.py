"""One gate run, read top to bottom in `run_gate`: snapshot -> regions -> scope (`--changed`) ->
measurement (the suite under coverage), with mutant generation beside it -> selection -> mutant
runs -> judgement.
Each step is a module of `gate.steps` (the mutants are made and run through `gate.mutmut_adapter`)
that decides what it is for; this module passes their values along, times them, and lets go of
what it started beside the measurement when the run stops early."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gate import __version__, imports
from gate.clock import Clock
from gate.levers import levers_off
from gate.mutmut_adapter import client
from gate.process import Background
from gate.progress import Progress, Silent
from gate.ratchet import load as load_ratchet
from gate.result import GateResult, MutantOutcome, MutantStatus, Region, RegionReport, stamp
from gate.settings import Settings
from gate.steps import cache, explain, generation, measurement, mutants, plan, regions, scope, selection, snapshot
from gate.steps.cache import ResultCache
from gate.steps.judgement import About, Checked, judged
from gate.steps.measurement import CoverageResult

NOTHING_CHANGED = "no error-handling code changed"
NO_REGIONS = "the guarded files hold no error-handling code"


def run_gate(settings: Settings, progress: Progress | None = None) -> GateResult:
    """Run the gate over the guarded files, or over what `settings.changed` touches. The caller
    holds the cache's lock (`gate.publish`)."""
    started = time.monotonic()
    levers_off()  # a misspelt lever, or a broken adoption file, fails before anything runs
    ratchet = load_ratchet(settings.root, settings.adoption_file) if settings.adoption_file else None
    about = About(project=str(settings.root), guarded_paths=settings.guarded_paths, shard=settings.shard,
                  run=run_info(settings), versions=_versions(settings))
    clock = Clock()
    with contextlib.ExitStack() as beside:  # what runs beside the mutants: the coverage HTML
        checked = _check(_Run(settings, progress or Silent(), clock, about, beside, started))
    clock.timings["total"] = round(time.monotonic() - started, 3)
    whole = settings.changed is None and settings.shard is None and not settings.only_coverage
    return judged(checked, settings.policy, about, clock.timings, ratchet, whole)


def _check(run: _Run) -> Checked:
    settings = run.settings
    # 1. the snapshot: every later step reads this one copy of the tree, however the user goes on
    #    editing theirs
    with run.clock.measure("snapshot"):
        snap = snapshot.take(settings.root, settings.cache_dir / "work", _own_folders(settings))

    # 2. the regions of the guarded files
    files = regions.guarded_files(snap.work, settings.guarded_paths)
    found = regions.find_all(snap.work, files, settings.policy.cleanup_functions)
    if not found:
        return Checked(nothing_to_check=NO_REGIONS)

    # 3. the scope: every region, or those `--changed` touches (and the tests its measurement needs)
    scoped = _scope(run, snap, files, found)
    if scoped is None:  # nothing guarded changed and no test did
        return Checked(nothing_to_check=NOTHING_CHANGED)

    # 4. the measurement (the suite under coverage), with the mutants generated beside it
    coverage, reports, notes, generating = _measurement_beside_generation(run, scoped)
    if generating is None:  # coverage only, or no region in scope: no mutant to run
        return Checked(regions=tuple(reports), suite_tests=_suite_tests(coverage), notes=tuple(notes),
                       nothing_to_check=NOTHING_CHANGED if scoped.change and not reports else None)
    generated: generation.Generated = _awaited(generating)
    with mutants.Handover(generated.started_run) as fork_server:
        made = generated.generation
        generation.check_made(made, found, settings)
        notes += generation.notes(made)
        reports = generation.with_type_problems(reports, generated.types, settings.policy.accept_unmutated)

        # 5. the selection: each in-region mutant with the policy's word and the tests that run its
        #    lines; a region no mutant was kept for is marked; then what is known without a run
        #    (cached, skipped, untested) and the jobs
        cache = ResultCache(settings.cache_dir / "results.json").load()
        candidates = selection.select(made.mutants, [r.region for r in reports], coverage, settings.policy,
                                      {f: text.splitlines() for f, text in scoped.sources.items()}, cache.entries)
        reports = selection.with_unmutated(reports, candidates, settings.policy.accept_unmutated)
        cache_keys = plan.cache_keys(settings, snap.work, snap.files, scoped.sources, scoped.environment,
                                     coverage)
        outcomes, jobs, keys = plan.plan(candidates, settings, coverage, cache_keys, cache)

        # 6. the mutant runs, then each survivor's missing check
        with run.clock.measure("mutants"):
            mutants.test_all(fork_server, jobs, outcomes, settings, coverage, cache, run.progress,
                             start=lambda: mutants.start_fork_server(settings, snap.work, files, scoped.tests))
    _explain(run, outcomes, keys, coverage, snap.work, files)

    # 7. the judgement (`run_gate`) of what was checked
    tested = tuple(outcomes[c.mutant.name] for c in candidates)
    return Checked(regions=tuple(reports), mutants=tested, suite_tests=_suite_tests(coverage),
                   mutmut_total=made.mutmut_total, gate_total=made.gate_total, equivalent=made.equivalent,
                   notes=tuple(notes),
                   sources={f: scoped.sources[f] for f in sorted({m.file for m in tested})})


def _explain(run: _Run, outcomes: dict[str, MutantOutcome], keys: dict[str, str], coverage: CoverageResult,
             work: Path, files: list[str]) -> None:
    """Each survivor's missing check (`explain`), within the explain budget; nothing when off."""
    survivors = [o for o in outcomes.values() if o.status is MutantStatus.SURVIVED]
    if not survivors:
        return
    settings = run.settings
    if not settings.explain:
        found = {m.name: explain.Explanation("", "off") for m in survivors}
    else:
        run.progress.stage(f"looking for what the tests of {len(survivors)} survivors could have checked")
        killers: dict[tuple[str, str], list[str]] = {}
        for o in outcomes.values():
            if o.killed_by:
                killers.setdefault((o.file, o.unit), []).append(o.killed_by)
        cold = not any(o.cached for o in outcomes.values())
        with run.clock.measure("explain"):
            found = explain.explain(survivors, settings, work, files, keys, killers, coverage.measurement.durations,
                                    time.monotonic() - run.started, cold)
    outcomes.update({name: dataclasses.replace(outcomes[name], missing_check=e.text, explained=e.kind,
                                               suggestion=e.suggestion) for name, e in found.items()})


@dataclass
class _Run:
    settings: Settings
    progress: Progress
    clock: Clock
    about: About
    beside: contextlib.ExitStack
    started: float
    """When the run began (`time.monotonic`): the explain budget is a share of what it took."""


@dataclass(frozen=True)
class _Scoped:
    """What the first three steps settled: where the copy is, what is guarded, the change and the
    tests its measurement runs, and what a measurement depends on."""

    snap: snapshot.Snapshot
    files: list[str]
    regions: list[Region]
    change: scope.ChangeScope | None
    subset: tuple[str, ...] | None
    """The tests of a `--changed` measurement; None for the whole suite."""
    tests: Sequence[str]
    sources: dict[str, str]
    environment: str
    run_key: str


def _scope(run: _Run, snap: snapshot.Snapshot, files: list[str], found: list[Region]) -> _Scoped | None:
    """The scope of this run; None when a `--changed` run has nothing to check."""
    settings = run.settings
    sources = {f: regions.read_source(snap.work / f) for f in files}
    change, subset = None, None
    if settings.changed is not None:
        index = scope.load_unit_index(_coverage_dir(settings))
        change = scope.read_change(settings.root, snap.work, settings.changed, files, settings.tests,
                                   own=_own_folders(settings)).with_dependents(index, cache.callee_graph(
                                       {f: regions.unit_shapes(text) for f, text in sources.items()}))
        subset = change.tests_to_run(index)
    if subset == ():
        return None
    tests = settings.tests if subset is None else subset
    environment = imports.environment_key()
    run_key = measurement.key(snap.work, snap.files, files, tests, settings.pytest_args, environment)
    return _Scoped(snap, files, found, change, subset, tests, sources, environment, run_key)


def _measurement_beside_generation(run: _Run, scoped: _Scoped
                                ) -> tuple[CoverageResult, list[RegionReport], list[str], Background | None]:
    """The measurement's coverage, the in-scope regions' reports and notes, and the generation that
    ran beside it (with mutmut's fork server warming up too, when the measurement really ran); no
    generation for a coverage-only run or when no region is in scope. The coverage HTML is then
    written beside whatever follows."""
    settings, work = run.settings, scoped.snap.work
    coverage_dir = _coverage_dir(settings)
    cached = measurement.is_cached(coverage_dir, scoped.run_key)
    generating = None if settings.only_coverage else Background(
        generation.generate, settings, work, scoped.snap.files, scoped.files, scoped.regions, scoped.tests,
        scoped.environment, run.clock, not cached)
    try:
        # a warm run says so: it runs no test here
        run.progress.stage("reusing the cached measurement (the code, the tests and their settings are unchanged)"
                           if cached else "running the suite under coverage (the measurement)")
        with run.clock.measure("coverage"):
            coverage = measurement.measure(
                work, coverage_dir, tests=scoped.tests, pytest_args=settings.pytest_args,
                guarded_files=scoped.files, regions=scoped.regions, report_dir=settings.pages_dir,
                key=scoped.run_key, whole_suite=scoped.subset is None, workers=settings.max_workers,
                progress=run.progress)
            if scoped.subset is None:
                scope.write_unit_index(coverage_dir, coverage.tests_for, scoped.sources)
        all_reports = generation.with_unmutatable(coverage.regions, settings)
        change = scoped.change
        reports = change.in_scope(all_reports, _suite_tests(coverage)) if change else all_reports
        notes = change.notes(len(all_reports) - len(reports)) if change else []
        if generating is not None and not reports:
            generating.abandon()
            generating = None
        # entered after any abandon, which stops every child of the run
        run.beside.enter_context(measurement.html_report_beside(work, coverage_dir, settings.pages_dir,
                                                             stamp(run.about.run)))
        if generating is not None:
            run.progress.stage("generating mutants")
    except BaseException:
        if generating is not None:
            generating.abandon()
        raise
    return coverage, reports, notes, generating


def _awaited(generating: Background) -> generation.Generated:
    try:
        return generating.result()
    except BaseException:
        generating.abandon()
        raise


def _suite_tests(coverage: CoverageResult) -> tuple[str, ...]:
    return tuple(sorted(coverage.measurement.durations))


def _coverage_dir(settings: Settings) -> Path:
    return settings.cache_dir / "coverage"


def list_regions(settings: Settings) -> list[Region]:
    """`--list-regions`: the regions of the guarded files as they are (no snapshot, no run)."""
    files = regions.guarded_files(settings.root, settings.guarded_paths)
    return regions.find_regions(settings.root, files, settings.policy.cleanup_functions)


def run_info(settings: Settings) -> dict[str, str]:
    """Which run this is, for every page it writes: full or `--changed`, the commit, the time; for a
    shard also what it ran on (`tree_of`), which the merge compares."""
    kind = ("full run" if settings.changed is None
            else "--changed run (the staged changes)" if settings.changed == "" else f"--changed run against {settings.changed}")
    info = {"kind": kind, "commit": snapshot.commit_of(settings.root, _own_folders(settings)) or "",
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    return {**info, **tree_of(settings)} if settings.shard is not None else info


def tree_of(settings: Settings) -> dict[str, str]:
    """What a shard's result depends on beyond its share, as digests: the project's files (the
    commit and any uncommitted change), the settings that change a result, and the environment
    (the interpreter and what is installed). Shards that differ in any are no one run."""
    files = snapshot.project_files(settings.root, _own_folders(settings))
    chosen = (settings.guarded_paths, settings.tests, settings.pytest_args, settings.policy_file,
              settings.timeout_multiplier, settings.timeout_constant, settings.worker_memory_mb, settings.adoption_file,
              settings.shard[1] if settings.shard else None)
    return {"tree": snapshot.digest(settings.root, files)[:16],
            "settings": hashlib.sha256(repr(chosen).encode()).hexdigest()[:16],
            "environment": imports.environment_key()[:16]}


def _versions(settings: Settings) -> dict[str, str]:
    versions = {"gate": __version__, "python": sys.version.split()[0]}
    if not settings.only_coverage:
        versions["mutmut"] = client.check_mutmut()  # before anything slow: fail fast and closed
    return versions


def _own_folders(settings: Settings) -> tuple[Path, ...]:
    """The gate's own folders and files, never part of the project it checks: a rewritten adoption
    file re-runs no mutant and widens no `--changed` run."""
    adoption = (settings.root / settings.adoption_file,) if settings.adoption_file else ()
    return (settings.cache_dir, settings.reports_dir, *adoption)

