"""Run the suite once, unmutated, under coverage.py with branch coverage and per-test contexts.

This is the measurement (the word means this run and nothing else in the gate): a failing test
here means no mutant result could be trusted, and the gate stops with a red suite.
What ran, and which tests ran it, comes from coverage.py's own analysis (its JSON report, with
contexts from pytest-cov); nothing here re-implements it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import coverage
from coverage.parser import PythonParser

from gate import environment, imports
from gate.errors import ConfigError, InfrastructureError, Interrupted, RedSuiteError, Terminated
from gate.levers import levers_off
from gate.process import Child, Completed, last_line, tool_caches
from gate.progress import Progress, Silent
from gate.result import Region, RegionKind, RegionReport
from gate.scenario import PytestExit
from gate.steps import snapshot, tool_reports
from gate.steps.regions import read_source
from gate.wire import codec, coverage_html
from gate.wire import measurement as plugin_messages
from gate.wire.coverage_html import HtmlReportSpec
from gate.wire.measurement import (Collected, EnvironmentReads, Finished, ImportReport, MeasurementRecord,
                                   SplitDurations)

COVERAGE_CONFIG_FILES = (".coveragerc", "setup.cfg", "tox.ini", "pyproject.toml")


@dataclass(frozen=True)
class Measurement:
    durations: dict[str, float]
    """Seconds per test (setup + call + teardown), by pytest node id."""
    seconds: float
    cached: bool = False
    imported: tuple[str, ...] = ()
    """The project's module files the suite imported (relative paths)."""
    processes: int = 1
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
    measurement: Measurement
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
    """Everything a measurement depends on: the whole snapshot and where it lies (coverage.py's data
    holds absolute paths: a moved cache is rebuilt, never misread), what it measures, how the suite
    runs, the environment."""
    return snapshot.digest(work, project) + repr((str(work), guarded_files, tests, pytest_args, environment))


def measure(work: Path, data_dir: Path, *, tests: Iterable[str], pytest_args: Iterable[str],
            guarded_files: list[str], regions: list[Region], report_dir: Path | None,
            key: str, whole_suite: bool = True, workers: int = 1,
            progress: Progress | None = None) -> CoverageResult:
    """Run the suite in `work` under coverage; fail with the failing tests' names if it is red.
    `progress` hears how many of its tests have finished, as they do.

    The suite imports the snapshot's code, whatever the user installed (`gate.imports`); a run
    that imported a guarded module from elsewhere, or (running the whole suite) measured none of
    the guarded files, is an infrastructure error and is never cached. `key` hashes everything
    the run depends on (the snapshot and where it lies, the arguments, the environment): a green
    run with the same key is not repeated, its data is reused."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_file, meta = data_dir / ".coverage", data_dir / "measurement.json"
    measured = _cached_measurement(meta, data_file, key)
    fresh = measured is None
    if measured is None:
        data_file.unlink(missing_ok=True)
        measured = _run_suite(work, data_dir, tests, pytest_args, guarded_files, workers, progress)
        meta.unlink(missing_ok=True)

    # until its record is written, a fresh measurement stopped is one the next run starts over
    with _starts_over_if_stopped() if fresh else contextlib.nullcontext():
        files = _coverage_json(work, data_file, (report_dir or data_dir) / "coverage.json")
        measured_any = any(files.get(f, {}).get("executed_lines") for f in guarded_files)
        if fresh and whole_suite and not measured_any:
            raise InfrastructureError(
                f"the suite ran but measured none of the {len(guarded_files)} guarded files (first: "
                f"{guarded_files[0]}): the tests do not import them, or import them from another tree")
        if fresh and measured_any:  # nothing that measured nothing is cached
            codec.write(meta, MeasurementRecord(
                key=key, durations=measured.durations, seconds=measured.seconds, imported=measured.imported,
                processes=measured.processes, environment_digest=measured.environment,
                environment=EnvironmentReads(measured.environment_read, measured.whole_environment)),
                plugin_messages.FORMAT)
    tests_by_line = {f: _tests_by_line(files[f]) for f in guarded_files if f in files}
    return CoverageResult(
        measurement=measured,
        regions=tuple(_region_coverage(r, files.get(r.file), tests_by_line.get(r.file, {})) for r in regions),
        tests_by_line=tests_by_line,
        first_lines={f: _first_lines(work / f) for f in guarded_files},
        shared_lines={f: _shared_lines(files[f]) for f in guarded_files if f in files},
    )


def _coverage_json(work: Path, data_file: Path, json_path: Path) -> dict:
    """coverage.py's JSON report of `data_file` (per-test contexts), by file."""
    with contextlib.chdir(work):  # so that coverage.py reports paths relative to the project
        cov = load_coverage(data_file, work)
        cov.json_report(outfile=str(json_path), show_contexts=True, ignore_errors=True)
    return tool_reports.coverage_files(json_path)


MIN_PROCESS_SECONDS = 2.0
MAX_PROCESSES = 8
BUSY_BESIDE = 2
"""Cores the work beside the measurement keeps busy (type resolution, generation, the fork server's warm-up)."""


def process_count(workers: int, tests_seconds: float | None, start_seconds: float | None,
                  cores: int | None = None) -> int:
    """How many processes the measurement is split across. Each process pays its own start (the
    imports, the collection: `start_seconds`, as the last measurement measured it), so a split only
    pays where each share of the tests (`tests_seconds` in all, by the last measurement's durations)
    takes longer than that start. Never more than the workers, nor the cores left free by the work
    beside the measurement (on 2 cores: one process), nor `MAX_PROCESSES`; with no earlier measurement to
    go by, one."""
    if "measurement-split" in levers_off() or tests_seconds is None or start_seconds is None:
        return 1
    free = (cores if cores is not None else os.cpu_count() or 1) - BUSY_BESIDE
    by_time = math.floor(tests_seconds / max(MIN_PROCESS_SECONDS, start_seconds))
    return max(1, min(workers, MAX_PROCESSES, free, by_time))


@dataclass(frozen=True)
class _Process:
    """One process of the measurement, and the files it writes."""

    child: Child
    log: Path
    probe: Path
    data: Path
    progress: Path


def _run_suite(work: Path, data_dir: Path, tests: Iterable[str], pytest_args: Iterable[str],
               guarded_files: list[str], workers: int, progress: Progress | None = None) -> Measurement:
    """The suite under coverage, importing the snapshot's code, split across up to `workers`
    processes whose coverage data is combined; checks where the code came from. `progress` hears
    how many of the collected tests have finished, as they do."""
    tests = list(tests)
    previous = _previous_record(data_dir)
    count = process_count(workers, _expected_seconds(previous, tests), _start_seconds(previous))
    with _starts_over_if_stopped():
        processes = _start_processes(work, data_dir, tests, list(pytest_args), guarded_files, count, previous)
        with _Watch([s.progress for s in processes], previous, progress or Silent()) as watch:
            try:
                done = [process.child.finish() for process in processes]
            except BaseException:
                for process in processes:
                    process.child.stop()
                raise
    measured = _read_measurement([s.log for s in processes], _combined_exit(done), "".join(d.output for d in done),
                                 max(d.seconds for d in done))
    if watch.error is not None:  # a progress line of the wrong shape: after a red suite, which says more
        raise watch.error
    _combine(work, data_dir / ".coverage", [s.data for s in processes if s.data.exists()])
    imported, files, read, whole = _read_import_reports([s.probe for s in processes])
    stray = next((found for each in imported if (found := imports.outside(work, each)) is not None), None)
    if stray is not None:
        raise InfrastructureError(
            f"the suite imported {stray[0]} from {stray[1]}, outside the gate's snapshot {work}: an editable "
            "install, PYTHONPATH or a sys.path change in the tests points it at another tree")
    return dataclasses.replace(measured, imported=tuple(sorted(files)), processes=count,
                               environment_read=tuple(sorted(read)), whole_environment=whole)


def _start_processes(work: Path, data_dir: Path, tests: list[str], pytest_args: list[str], guarded_files: list[str],
                     count: int, previous: MeasurementRecord | None) -> list[_Process]:
    """The measurement's `count` processes, started; the gate's plugin is told what to do by its options."""
    plugin_args = ["-p", "gate.steps.measurement_plugin",
                   *(f"{plugin_messages.GUARDED_MODULE_OPTION}={imports.module_name(work, f)}" for f in guarded_files)]
    if count > 1:
        durations_file = data_dir / "previous-durations.json"
        codec.write(durations_file, SplitDurations(previous.durations if previous else {}), plugin_messages.FORMAT)
        plugin_args.append(f"{plugin_messages.SPLIT_DURATIONS_OPTION}={durations_file}")
    sources = sorted({str(Path(f).parent) if Path(f).parent != Path(".") else "." for f in guarded_files})
    env = {**tool_caches(data_dir / "tools"),
           "PYTHONPATH": imports.python_path(work, imports.import_roots(work, guarded_files))}
    processes: list[_Process] = []
    try:
        for k in range(1, count + 1):
            log, probe, data, progress = (data_dir / f"measurement-{k}.jsonl", data_dir / f"imports-{k}.json",
                                          data_dir / f".coverage.part{k}", data_dir / f"progress-{k}.jsonl")
            for stale in (log, probe, data, progress):
                stale.unlink(missing_ok=True)
            args = ["-m", "pytest", *tests, *pytest_args, "-p", "no:cacheprovider", *plugin_args,
                    f"{plugin_messages.IMPORT_REPORT_OPTION}={probe}", f"{plugin_messages.PROGRESS_OPTION}={progress}",
                    *([f"{plugin_messages.SPLIT_OPTION}={k}/{count}"] if count > 1 else []),
                    "-q", *(f"--cov={s}" for s in sources), "--cov-branch",
                    "--cov-context=test", "--cov-report=", f"--report-log={log}"]
            processes.append(_Process(Child(args, cwd=work, env={**env, "COVERAGE_FILE": str(data)}), log, probe, data,
                                      progress))
    except BaseException:
        for process in processes:
            process.child.stop()
        raise
    return processes


@contextlib.contextmanager
def _starts_over_if_stopped() -> Iterator[None]:
    """Ctrl-C or SIGTERM before the measurement is cached: nothing of it is kept, so the message
    says the next run measures again (not, as elsewhere, that what finished is cached)."""
    try:
        yield
    except KeyboardInterrupt as stop:
        how = "stopped by SIGTERM" if isinstance(stop, Terminated) else "interrupted by Ctrl-C"
        raise Interrupted(f"{how} during the measurement, which is cached only once it completes: "
                          "the next run starts it over") from None


POLL_SECONDS = 0.5


class _Watch:
    """The processes' progress files (`gate.wire.measurement.PROGRESS_OPTION`), read on a thread
    while the gate waits for the processes: how many of the tests they collected have finished,
    and what the rest took in the last measurement. The status line is ended on the way out, so
    that whatever is printed next (the interruption's message too) starts a line of its own."""

    def __init__(self, files: list[Path], previous: MeasurementRecord | None, progress: Progress) -> None:
        self.files, self.previous, self.progress = files, previous, progress
        self.offsets = [0] * len(files)
        self.collected: list[tuple[str, ...] | None] = [None] * len(files)
        self.finished: list[set[str]] = [set() for _ in files]
        self.shown = -1
        self.error: codec.WireError | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._poll, name="measurement-progress", daemon=True)

    def __enter__(self) -> _Watch:
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.stopping.set()
        self.thread.join()
        if kind is None:
            self.update()  # the last tests, finished since the last poll
        self.progress.end_line()

    def _poll(self) -> None:
        while not self.stopping.wait(POLL_SECONDS):
            self.update()

    def update(self) -> None:
        if self.error is not None:
            return
        try:
            for i in range(len(self.files)):
                self._read(i)
        except codec.WireError as exc:
            self.error = exc
            return
        if any(tests is None for tests in self.collected):
            return  # the total is not known until every process has collected
        total = sum(len(tests or ()) for tests in self.collected)
        done = min(total, sum(len(f) for f in self.finished))
        if total and done != self.shown:
            self.shown = done
            self.progress.measurement(done, total, self._seconds_left())

    def _read(self, i: int) -> None:
        """The whole lines process `i` appended since the last read (a line being written waits)."""
        try:
            with self.files[i].open("rb") as f:
                f.seek(self.offsets[i])
                chunk = f.read()
        except FileNotFoundError:  # not collected yet
            return
        whole = chunk[:chunk.rfind(b"\n") + 1]
        self.offsets[i] += len(whole)
        for line in whole.decode().split("\n")[:-1]:
            if self.collected[i] is None:
                self.collected[i] = codec.loads(Collected, line, plugin_messages.PROGRESS_FORMAT).tests
            else:
                self.finished[i].add(codec.loads(Finished, line, plugin_messages.PROGRESS_FORMAT).test)

    def _seconds_left(self) -> float | None:
        """What the unfinished tests took last time, in the slowest process (a test new since then
        counts as the last tests' mean); None without a last measurement."""
        if self.previous is None or not self.previous.durations:
            return None
        last = self.previous.durations
        mean = sum(last.values()) / len(last)
        return max(sum(last.get(t, mean) for t in tests or () if t not in finished)
                   for tests, finished in zip(self.collected, self.finished))


def _read_import_reports(reports: list[Path]) -> tuple[list[dict[str, str | None]], set[str], set[str], str | None]:
    """Where each process imported each guarded module from, the project files they imported, the
    environment variables they read, and why the whole environment counts (if it does)."""
    imported: list[dict[str, str | None]] = []
    files: set[str] = set()
    read: set[str] = set()
    whole: str | None = None
    for path in reports:
        if not path.exists():
            raise InfrastructureError("the measurement did not say where it imported the guarded modules from "
                                      "(the gate's pytest plugin gate.steps.measurement_plugin did not run)")
        report = codec.read(ImportReport, path, plugin_messages.FORMAT)
        imported.append(dict(report.guarded))
        files.update(report.files)
        read.update(report.environment.read)
        whole = whole or report.environment.whole
    return imported, files, read, whole


def _combined_exit(done: list[Completed]) -> int:
    """One exit code for the processes: a usage error first, then failed tests, then no tests anywhere."""
    codes = [d.returncode for d in done]
    for code in (PytestExit.USAGE_ERROR, PytestExit.TESTS_FAILED, PytestExit.INTERRUPTED, PytestExit.INTERNAL_ERROR):
        if code in codes:
            return code
    if all(code == PytestExit.NO_TESTS_COLLECTED for code in codes):
        return PytestExit.NO_TESTS_COLLECTED
    return next((code for code in codes if code not in (PytestExit.OK, PytestExit.NO_TESTS_COLLECTED)), PytestExit.OK)


def _combine(work: Path, data_file: Path, parts: list[Path]) -> None:
    """coverage.py's own combine of the processes' data (lines, arcs and test contexts) into `data_file`."""
    data_file.unlink(missing_ok=True)
    if not parts:
        raise InfrastructureError("the measurement ran but wrote no coverage data (is pytest-cov installed?)")
    if len(parts) == 1:
        parts[0].replace(data_file)
        return
    with contextlib.chdir(work):
        cov = coverage.Coverage(data_file=str(data_file), config_file=_config_file(work))
        cov.combine([str(s) for s in parts], strict=True, keep=False)
        cov.save()


def _previous_record(data_dir: Path) -> MeasurementRecord | None:
    """The last measurement's record, whatever it ran: a guide for the split, nothing more (none,
    or one an older gate wrote, is no guide)."""
    try:
        return codec.read(MeasurementRecord, data_dir / "measurement.json", plugin_messages.FORMAT)
    except codec.WireError:
        return None


def _expected_seconds(previous: MeasurementRecord | None, tests: list[str]) -> float | None:
    """What the tests took last time: the named ones, or (the suite named by paths) all of them."""
    if previous is None:
        return None
    if all("::" in t for t in tests):
        return sum(previous.durations.get(t, 0.0) for t in tests)
    return sum(previous.durations.values())


def _start_seconds(previous: MeasurementRecord | None) -> float | None:
    """What each process of the last measurement spent on anything but tests (its start)."""
    if previous is None:
        return None
    return max(0.0, previous.seconds - sum(previous.durations.values()) / max(1, previous.processes))


def _first_lines(path: Path) -> dict[int, int]:
    """coverage.py's own map of each line of a multi-line statement to the statement's first line."""
    text = read_source(path)
    parser = PythonParser(text=text, filename=str(path))
    parser.parse_source()
    return {line: first for line in range(1, text.count("\n") + 2) if (first := parser.first_line(line)) != line}


@contextlib.contextmanager
def html_report_beside(work: Path, data_dir: Path, report_dir: Path, stamp: str) -> Iterator[None]:
    """coverage.py's HTML report of the last `measure`, written by a child process in the snapshot
    (`gate.steps.coverage_html`) while the body runs (the mutants). It is stopped if the body
    fails, and a failure of its own fails the run."""
    spec_path = data_dir / "html-report-spec.json"
    codec.write(spec_path, HtmlReportSpec(
        data_file=str(data_dir / ".coverage"), directory=str(report_dir / "coverage"),
        title=f"Whole-file coverage of the guarded files (coverage.py), {stamp}"), coverage_html.FORMAT)
    child = Child(["-P", "-m", "gate.steps.coverage_html", str(spec_path)], cwd=work)
    try:
        yield
    except BaseException:
        child.stop()
        raise
    done = child.finish()
    if done.returncode != 0:
        raise InfrastructureError(f"coverage.py's HTML report failed: {last_line(done.output)}")


def is_cached(data_dir: Path, key: str) -> bool:
    """Whether `measure` with this key will reuse the last run instead of running the suite."""
    return _cached_measurement(data_dir / "measurement.json", data_dir / ".coverage", key) is not None


def _cached_measurement(meta: Path, data_file: Path, key: str) -> Measurement | None:
    try:
        record = codec.read(MeasurementRecord, meta, plugin_messages.FORMAT)
    except codec.OtherFormat:  # an older gate's: measure again
        return None
    except codec.WireError:
        if not meta.exists():
            return None
        raise
    if record.key != key or not data_file.exists():
        return None
    cached = Measurement(durations=record.durations, seconds=record.seconds, cached=True, imported=record.imported,
                         processes=record.processes, environment_read=record.environment.read,
                         whole_environment=record.environment.whole)
    # a variable the suite read has another value now (or is set, or unset): it may run otherwise
    return cached if cached.environment == record.environment_digest else None


def _read_measurement(report_logs: list[Path], returncode: int, output: str, seconds: float) -> Measurement:
    if returncode == PytestExit.USAGE_ERROR:
        raise ConfigError(_usage_error(output))
    reports = tool_reports.report_log_entries(report_logs)
    durations: dict[str, float] = defaultdict(float)
    failed: list[str] = []
    for report in reports:
        kind, nodeid = report.get("$report_type"), report.get("nodeid", "")
        if kind == "TestReport":
            durations[nodeid] += report["duration"]
        if kind in ("TestReport", "CollectReport") and report.get("outcome") == "failed":
            if kind == "CollectReport" and (cannot := _cannot_import(report.get("longrepr"), code_only=True)):
                raise ConfigError(cannot)
            failed.append(f"{nodeid or '<collection>'} ({_reason(report)})")
    if failed:
        shown = "; ".join(dict.fromkeys(failed))
        raise RedSuiteError(f"the suite fails on unmutated code: {shown}")
    if returncode == PytestExit.NO_TESTS_COLLECTED or not durations:
        # no test to fail: the suite's selection is wrong, not the code
        where = ", ".join(_outermost_collected(reports))
        raise ConfigError(f"the suite collected no tests (pytest exit {returncode})"
                          f"{f' from {where}' if where else ''}: check [tool.gate] tests")
    if returncode != PytestExit.OK:
        raise InfrastructureError(f"the measurement run exited {returncode}: {last_line(output)}")
    return Measurement(durations=dict(durations), seconds=seconds)


def _usage_error(output: str) -> str:
    """What pytest's usage error (exit 4) says: a test path the snapshot lacks, an import that
    failed while loading a conftest file, or else its last line."""
    prefix = "ERROR: file or directory not found: "
    missing = next((line.removeprefix(prefix) for line in output.splitlines() if line.startswith(prefix)), None)
    if missing is not None:  # git keeps no empty folder, so neither does the snapshot
        return (f"the suite collected no tests: {missing} is not there or is an empty folder, which the gate's "
                "snapshot does not copy: check [tool.gate] tests")
    return _cannot_import(output, code_only=False) or f"pytest rejected the test arguments: {last_line(output)}"


def _cannot_import(longrepr: object, *, code_only: bool) -> str | None:
    """The message for an import that failed at a module's top level; with `code_only`, only where
    the project's own code (a relative path that is no test module nor conftest file) made it: a test
    module that imports what is not there is a red suite."""
    failed = imports.failed_import(longrepr) if isinstance(longrepr, str) else None
    if failed is None:
        return None
    if code_only and (failed.file is None or Path(failed.file).is_absolute() or snapshot.is_test_module(failed.file)
                      or Path(failed.file).name == "conftest.py"):
        return None
    where = f" ({failed.file}:{failed.line})" if failed.file else ""
    return f"the suite cannot import {failed.module} in the gate's snapshot{where}: {failed.error}"


def _outermost_collected(reports: list[dict]) -> list[str]:
    """The collectors pytest was pointed at (`tests`): the outermost ones it reported."""
    nodes = {r["nodeid"] for r in reports if r.get("$report_type") == "CollectReport" and r.get("nodeid")}
    return sorted(n for n in nodes if not any(n.startswith(f"{other}/") or n.startswith(f"{other}::")
                                              for other in nodes))


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


def load_coverage(data_file: Path, work: Path) -> coverage.Coverage:
    """The measurement's coverage data, read with the project's own coverage configuration."""
    cov = coverage.Coverage(data_file=str(data_file), config_file=_config_file(work))
    cov.load()
    return cov


def _config_file(work: Path) -> str | bool:
    for name in COVERAGE_CONFIG_FILES:
        if (work / name).exists():
            return name
    return False
