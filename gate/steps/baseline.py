"""Run the suite once, unmutated, under coverage.py with branch coverage and per-test contexts.

This run is also the baseline: a failing test here means no mutant result could be trusted.
What ran, and which tests ran it, comes from coverage.py's own analysis (its JSON report, with
contexts from pytest-cov); nothing here re-implements it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import coverage
from coverage.parser import PythonParser

from gate import environment, imports
from gate.errors import ConfigError, InfrastructureError, RedBaselineError
from gate.levers import levers_off
from gate.process import Child, Completed, last_line, tool_caches
from gate.result import Region, RegionKind, RegionReport
from gate.steps import snapshot
from gate.steps.regions import read_source

COVERAGE_CONFIG_FILES = (".coveragerc", "setup.cfg", "tox.ini", "pyproject.toml")


@dataclass(frozen=True)
class Baseline:
    durations: dict[str, float]
    """Seconds per test (setup + call + teardown), by pytest node id."""
    seconds: float
    cached: bool = False
    imported: tuple[str, ...] = ()
    """The project's module files the suite imported (relative paths)."""
    shards: int = 1
    """How many processes the suite was split across."""
    environment_read: tuple[str, ...] = ()
    """The environment variables the suite read (`gate.steps.environment_probe`)."""
    whole_environment: str | None = None
    """Why the whole environment counts, where it does (the suite iterated over it, or started a process)."""

    @property
    def environment(self) -> str:
        """A digest of what of the environment its results depend on, as it is now."""
        return environment.read_key(self.environment_read, self.whole_environment)


@dataclass(frozen=True)
class CoverageResult:
    baseline: Baseline
    regions: tuple[RegionReport, ...]
    tests_by_line: dict[str, dict[int, frozenset[str]]]
    """file -> line -> node ids of the tests that executed it."""
    first_lines: dict[str, dict[int, int]] = field(default_factory=dict)
    """file -> line of a multi-line statement -> its first line, under which coverage.py records it."""
    shared_lines: dict[str, frozenset[int]] = field(default_factory=dict)
    """file -> the lines run outside any one test's own call: at collection (no context), or in a
    fixture's setup or teardown (which a shared fixture runs for whichever test comes first)."""

    def tests_for(self, file: str, start: int, end: int) -> frozenset[str]:
        by_line = self.tests_by_line.get(file, {})
        firsts = self.first_lines.get(file, {})
        lines = {firsts.get(line, line) for line in range(start, end + 1)}
        return frozenset().union(*(by_line.get(line, frozenset()) for line in lines))


def key(work: Path, project: list[str], guarded_files: list[str], tests: Iterable[str], pytest_args: Iterable[str],
        environment: str) -> str:
    """Everything a baseline depends on: the whole snapshot and where it lies (coverage.py's data
    holds absolute paths: a moved cache is rebuilt, never misread), what it measures, how the suite
    runs, the environment."""
    return snapshot.digest(work, project) + repr((str(work), guarded_files, tests, pytest_args, environment))


def measure(work: Path, data_dir: Path, *, tests: Iterable[str], pytest_args: Iterable[str],
            guarded_files: list[str], regions: list[Region], report_dir: Path | None,
            key: str, whole_suite: bool = True, workers: int = 1) -> CoverageResult:
    """Run the suite in `work` under coverage; fail with the failing tests' names if it is red.

    The suite imports the snapshot's code, whatever the user installed (`gate.imports`); a run
    that imported a guarded module from elsewhere, or (running the whole suite) measured none of
    the guarded files, is an infrastructure error and is never cached. `key` hashes everything
    the run depends on (the snapshot and where it lies, the arguments, the environment): a green
    run with the same key is not repeated, its data is reused."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_file, meta = data_dir / ".coverage", data_dir / "baseline.json"
    baseline = _cached_baseline(meta, data_file, key)
    fresh = baseline is None
    if baseline is None:
        data_file.unlink(missing_ok=True)
        baseline = _run_baseline(work, data_dir, tests, pytest_args, guarded_files, workers)
        meta.unlink(missing_ok=True)

    json_path = (report_dir or data_dir) / "coverage.json"
    with contextlib.chdir(work):  # so that coverage.py reports paths relative to the project
        cov = _load(data_file, work)
        cov.json_report(outfile=str(json_path), show_contexts=True, ignore_errors=True)
    files = json.loads(json_path.read_text())["files"]
    measured = any(files.get(f, {}).get("executed_lines") for f in guarded_files)
    if fresh and whole_suite and not measured:
        raise InfrastructureError(
            f"the suite ran but measured none of the {len(guarded_files)} guarded files (first: "
            f"{guarded_files[0]}): the tests do not import them, or import them from another tree")
    if fresh and measured:  # nothing that measured nothing is cached
        meta.write_text(json.dumps({"key": key, "durations": baseline.durations, "seconds": baseline.seconds,
                                    "imported": baseline.imported, "shards": baseline.shards,
                                    "environment_read": baseline.environment_read,
                                    "environment_whole": baseline.whole_environment,
                                    "environment": baseline.environment}))
    tests_by_line = {f: _tests_by_line(files[f]) for f in guarded_files if f in files}
    return CoverageResult(
        baseline=baseline,
        regions=tuple(_region_coverage(r, files.get(r.file), tests_by_line.get(r.file, {})) for r in regions),
        tests_by_line=tests_by_line,
        first_lines={f: _first_lines(work / f) for f in guarded_files},
        shared_lines={f: _shared_lines(files[f]) for f in guarded_files if f in files},
    )


MIN_SHARD_SECONDS = 2.0
MAX_SHARDS = 8
BUSY_BESIDE = 2
"""Cores the work beside the baseline keeps busy (type resolution, generation, the fork server's warm-up)."""


def shard_count(workers: int, tests_seconds: float | None, start_seconds: float | None,
                cores: int | None = None) -> int:
    """How many processes the baseline is split across. Each process pays its own start (the
    imports, the collection: `start_seconds`, as the last baseline measured it), so a split only
    pays where each share of the tests (`tests_seconds` in all, by the last baseline's durations)
    takes longer than that start. Never more than the workers, nor the cores left free by the work
    beside the baseline (on 2 cores: one process), nor `MAX_SHARDS`; with no earlier baseline to
    go by, one."""
    if "baseline-shards" in levers_off() or tests_seconds is None or start_seconds is None:
        return 1
    free = (cores if cores is not None else os.cpu_count() or 1) - BUSY_BESIDE
    by_time = math.floor(tests_seconds / max(MIN_SHARD_SECONDS, start_seconds))
    return max(1, min(workers, MAX_SHARDS, free, by_time))


@dataclass(frozen=True)
class _Shard:
    """One process of the baseline, and the files it writes."""

    child: Child
    log: Path
    probe: Path
    data: Path


def _run_baseline(work: Path, data_dir: Path, tests: Iterable[str], pytest_args: Iterable[str],
                  guarded_files: list[str], workers: int) -> Baseline:
    """The suite under coverage, importing the snapshot's code, split across up to `workers`
    processes whose coverage data is combined; checks where the code came from."""
    tests = list(tests)
    previous, start_seconds = _previous_baseline(data_dir)
    expected = None if previous is None else (
        sum(previous.get(t, 0.0) for t in tests) if all("::" in t for t in tests) else sum(previous.values()))
    count = shard_count(workers, expected, start_seconds)
    split_env = {}
    if count > 1:
        durations_file = data_dir / "previous-durations.json"
        durations_file.write_text(json.dumps(previous or {}))
        split_env = {"GATE_SHARD_DURATIONS": str(durations_file)}
    sources = sorted({str(Path(f).parent) if Path(f).parent != Path(".") else "." for f in guarded_files})
    env = {**tool_caches(data_dir / "tools"),
           "PYTHONPATH": imports.python_path(work, imports.import_roots(work, guarded_files)),
           "GATE_PROBE_MODULES": json.dumps([imports.module_name(work, f) for f in guarded_files]), **split_env}
    shards: list[_Shard] = []
    try:
        for k in range(1, count + 1):
            log, probe, data = (data_dir / f"baseline-{k}.jsonl", data_dir / f"imports-{k}.json",
                                data_dir / f".coverage.shard{k}")
            for stale in (log, probe, data):
                stale.unlink(missing_ok=True)
            args = ["-m", "pytest", *tests, *pytest_args, "-p", "no:cacheprovider", "-p", "gate.steps.import_probe",
                    "-p", "gate.steps.baseline_plugin", "-q", *(f"--cov={s}" for s in sources), "--cov-branch",
                    "--cov-context=test", "--cov-report=", f"--report-log={log}"]
            shard_env = {**env, "COVERAGE_FILE": str(data), "GATE_PROBE_OUT": str(probe),
                         "GATE_SHARD": f"{k}/{count}" if count > 1 else ""}
            shards.append(_Shard(Child(args, cwd=work, env=shard_env), log, probe, data))
        done = [shard.child.finish() for shard in shards]
    except BaseException:
        for shard in shards:
            shard.child.stop()
        raise
    baseline = _read_baseline([s.log for s in shards], _combined_exit(done), "".join(d.output for d in done),
                              max(d.seconds for d in done))
    _combine(work, data_dir / ".coverage", [s.data for s in shards if s.data.exists()])
    imported, files, read, whole = _read_probes([s.probe for s in shards])
    stray = next((found for each in imported if (found := imports.outside(work, each)) is not None), None)
    if stray is not None:
        raise InfrastructureError(
            f"the suite imported {stray[0]} from {stray[1]}, outside the gate's snapshot {work}: an editable "
            "install, PYTHONPATH or a sys.path change in the tests points it at another tree")
    return dataclasses.replace(baseline, imported=tuple(sorted(files)), shards=count,
                               environment_read=tuple(sorted(read)), whole_environment=whole)


def _read_probes(probes: list[Path]) -> tuple[list[dict[str, str | None]], set[str], set[str], str | None]:
    """Where each shard imported each guarded module from, the project files they imported, the
    environment variables they read, and why the whole environment counts (if it does)."""
    imported: list[dict[str, str | None]] = []
    files: set[str] = set()
    read: set[str] = set()
    whole: str | None = None
    try:
        for probe in probes:
            probed = json.loads(probe.read_text())
            imported.append(dict(probed["guarded"]))
            files.update(probed["files"])
            read.update(probed["environment"]["read"])
            whole = whole or probed["environment"]["whole"]
    except (OSError, ValueError, KeyError, TypeError):
        raise InfrastructureError("the baseline did not say where it imported the guarded modules from "
                                  "(the gate's pytest plugin gate.steps.import_probe did not run)") from None
    return imported, files, read, whole


def _combined_exit(done: list[Completed]) -> int:
    """One exit code for the shards: a usage error first, then failed tests, then no tests anywhere."""
    codes = [d.returncode for d in done]
    for code in (4, 1, 2, 3):
        if code in codes:
            return code
    if all(code == 5 for code in codes):
        return 5
    return next((code for code in codes if code not in (0, 5)), 0)


def _combine(work: Path, data_file: Path, shards: list[Path]) -> None:
    """coverage.py's own combine of the shards' data (lines, arcs and test contexts) into `data_file`."""
    data_file.unlink(missing_ok=True)
    if not shards:
        raise InfrastructureError("the baseline ran but wrote no coverage data (is pytest-cov installed?)")
    if len(shards) == 1:
        shards[0].replace(data_file)
        return
    with contextlib.chdir(work):
        cov = coverage.Coverage(data_file=str(data_file), config_file=_config_file(work))
        cov.combine([str(s) for s in shards], strict=True, keep=False)
        cov.save()


def _previous_baseline(data_dir: Path) -> tuple[dict[str, float] | None, float | None]:
    """The last baseline's seconds per test, and what each of its processes spent on anything but
    tests (its start), whatever it ran: a guide for the split, nothing more."""
    try:
        data = json.loads((data_dir / "baseline.json").read_text())
        durations = {str(k): float(v) for k, v in data["durations"].items()}
        start = float(data["seconds"]) - sum(durations.values()) / int(data.get("shards", 1))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ZeroDivisionError):
        return None, None
    return durations, max(0.0, start)


def _first_lines(path: Path) -> dict[int, int]:
    """coverage.py's own map of each line of a multi-line statement to the statement's first line."""
    text = read_source(path)
    parser = PythonParser(text=text, filename=str(path))
    parser.parse_source()
    return {line: first for line in range(1, text.count("\n") + 2) if (first := parser.first_line(line)) != line}


@contextlib.contextmanager
def html_report_beside(work: Path, data_dir: Path, report_dir: Path, stamp: str) -> Iterator[None]:
    """coverage.py's HTML report (branches, test contexts) of the last `measure`, written by a
    child process in the snapshot while the body runs (the mutants): it takes seconds and the
    verdict does not need it. It is stopped if the body fails, and a failure of its own fails
    the run."""
    child = Child(["-P", "-m", "gate.steps.baseline", str(data_dir / ".coverage"), str(report_dir / "coverage"),
                   stamp], cwd=work)
    try:
        yield
    except BaseException:
        child.stop()
        raise
    done = child.finish()
    if done.returncode != 0:
        raise InfrastructureError(f"coverage.py's HTML report failed: {last_line(done.output)}")


def _write_html(data_file: str, directory: str, stamp: str) -> None:
    cov = _load(Path(data_file), Path.cwd())
    # whole files: the regions' own coverage is the headline of the gate's index.html
    cov.html_report(directory=directory, show_contexts=True, ignore_errors=True,
                    title=f"Whole-file coverage of the guarded files (coverage.py), {stamp}")


def is_cached(data_dir: Path, key: str) -> bool:
    """Whether `measure` with this key will reuse the last run instead of running the suite."""
    return _cached_baseline(data_dir / "baseline.json", data_dir / ".coverage", key) is not None


def _cached_baseline(meta: Path, data_file: Path, key: str) -> Baseline | None:
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if data.get("key") != key or "environment" not in data or not data_file.exists():  # an older gate's: re-run
        return None
    cached = Baseline(durations=data["durations"], seconds=data["seconds"], cached=True,
                      imported=tuple(data["imported"]), shards=data.get("shards", 1),
                      environment_read=tuple(data["environment_read"]), whole_environment=data["environment_whole"])
    # a variable the suite read has another value now (or is set, or unset): it may run otherwise
    return cached if cached.environment == data["environment"] else None


def _read_baseline(report_logs: list[Path], returncode: int, output: str, seconds: float) -> Baseline:
    if returncode == 4:
        raise ConfigError(f"pytest rejected the test arguments: {last_line(output)}")
    reports = [json.loads(line) for log in report_logs if log.exists() for line in log.read_text().splitlines()]
    durations: dict[str, float] = defaultdict(float)
    failed: list[str] = []
    for report in reports:
        kind, nodeid = report.get("$report_type"), report.get("nodeid", "")
        if kind == "TestReport":
            durations[nodeid] += report["duration"]
        if kind in ("TestReport", "CollectReport") and report.get("outcome") == "failed":
            failed.append(f"{nodeid or '<collection>'} ({_reason(report)})")
    if failed:
        shown = "; ".join(dict.fromkeys(failed))
        raise RedBaselineError(f"the suite fails on unmutated code: {shown}")
    if returncode == 5 or not durations:
        raise RedBaselineError("the suite collected no tests (pytest exit 5): check [tool.gate] tests")
    if returncode != 0:
        raise InfrastructureError(f"the baseline run exited {returncode}: {last_line(output)}")
    return Baseline(durations=dict(durations), seconds=seconds)


def _reason(report: dict) -> str:
    longrepr = report.get("longrepr")
    if isinstance(longrepr, dict):
        crash = (longrepr.get("reprcrash") or {}).get("message", "")
        return " ".join(crash.split())[:200] or "failed"
    if isinstance(longrepr, str):
        return " ".join(longrepr.splitlines()[-1:])[:200]
    return f"{report.get('when', 'collect')} failed"


def _region_coverage(region: Region, data: dict | None, tests: dict[int, frozenset[str]]) -> RegionReport:
    if data is None:
        return RegionReport(region, entered=False, tests=(), missing_branches=())
    executed = set(data["executed_lines"])
    lines = set(region.lines)
    if region.kind is RegionKind.CLEANUP:  # its `def` line runs at import; only the body counts
        lines -= set(range(region.start, region.entry_line))
    reached = sorted(frozenset().union(*(tests.get(line, frozenset()) for line in lines)))
    missing = tuple((a, b) for a, b in data.get("missing_branches", []) if a in lines)
    body = lines - set(range(region.start, region.entry_line)) if region.kind is RegionKind.EXCEPT else lines
    statements = body & (executed | set(data.get("missing_lines", [])))
    taken = tuple((a, b) for a, b in data.get("executed_branches", []) if a in lines)
    return RegionReport(region, entered=region.entry_line in executed, tests=tuple(reached),
                        missing_branches=missing, entering=tuple(sorted(tests.get(region.entry_line, frozenset()))),
                        statements_run=tuple(sorted(statements & executed)),
                        statements_missed=tuple(sorted(statements - executed)), branches_taken=taken)


def _shared_lines(data: dict) -> frozenset[int]:
    return frozenset(int(line) for line, contexts in data.get("contexts", {}).items()
                     if any(c == "" or c.endswith(("|setup", "|teardown")) for c in contexts))


def _tests_by_line(data: dict) -> dict[int, frozenset[str]]:
    """Node ids per line, from pytest-cov's contexts (`<nodeid>|setup|run|teardown`)."""
    return {int(line): frozenset(c.rsplit("|", 1)[0] for c in contexts if c)
            for line, contexts in data.get("contexts", {}).items()}


def _load(data_file: Path, work: Path) -> coverage.Coverage:
    """The baseline's coverage data, read with the project's own coverage configuration."""
    cov = coverage.Coverage(data_file=str(data_file), config_file=_config_file(work))
    cov.load()
    return cov


def _config_file(work: Path) -> str | bool:
    for name in COVERAGE_CONFIG_FILES:
        if (work / name).exists():
            return name
    return False


if __name__ == "__main__":  # the HTML report's child process: python -P -m gate.steps.baseline DATA DIR
    import sys

    _write_html(*sys.argv[1:4])
