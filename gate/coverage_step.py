"""Run the suite once, unmutated, under coverage.py with branch coverage and per-test contexts.

This run is also the baseline: a failing test here means no mutant result could be trusted.
What ran, and which tests ran it, comes from coverage.py's own analysis (its JSON report, with
contexts from pytest-cov); nothing here re-implements it.
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import coverage
from coverage.parser import PythonParser

from gate import imports
from gate.errors import ConfigError, InfrastructureError, RedBaselineError
from gate.process import Child, run_python
from gate.regions import Region, RegionKind, read_source, unit_spans

COVERAGE_CONFIG_FILES = (".coveragerc", "setup.cfg", "tox.ini", "pyproject.toml")


@dataclass(frozen=True)
class Baseline:
    durations: dict[str, float]
    """Seconds per test (setup + call + teardown), by pytest node id."""
    seconds: float
    cached: bool = False


@dataclass(frozen=True)
class RegionCoverage:
    region: Region
    entered: bool
    tests: tuple[str, ...]
    missing_branches: tuple[tuple[int, int], ...]
    """Branches that start inside the region and that no test took (coverage.py's arcs)."""
    entering: tuple[str, ...] = ()
    """The tests that ran its first statement."""
    statements_run: tuple[int, ...] = ()
    """The statements inside the region that ran (their first lines), by coverage.py's analysis;
    not an `except` clause's own line, which runs whenever an exception is checked against it."""
    statements_missed: tuple[int, ...] = ()
    branches_taken: tuple[tuple[int, int], ...] = ()
    """Branches that start inside the region and that a test took."""


@dataclass(frozen=True)
class CoverageResult:
    baseline: Baseline
    regions: tuple[RegionCoverage, ...]
    tests_by_line: dict[str, dict[int, frozenset[str]]]
    """file -> line -> node ids of the tests that executed it."""
    first_lines: dict[str, dict[int, int]] = field(default_factory=dict)
    """file -> line of a multi-line statement -> its first line, under which coverage.py records it."""

    def tests_for(self, file: str, start: int, end: int) -> frozenset[str]:
        by_line = self.tests_by_line.get(file, {})
        firsts = self.first_lines.get(file, {})
        lines = {firsts.get(line, line) for line in range(start, end + 1)}
        return frozenset().union(*(by_line.get(line, frozenset()) for line in lines))


def measure(work: Path, data_dir: Path, *, tests: Iterable[str], pytest_args: Iterable[str],
            guarded_files: list[str], regions: list[Region], report_dir: Path | None,
            key: str, whole_suite: bool = True) -> CoverageResult:
    """Run the suite in `work` under coverage; fail with the failing tests' names if it is red.

    The suite imports the snapshot's code, whatever the user installed (`gate.imports`); a run
    that imported a guarded module from elsewhere, or (running the whole suite) measured none of
    the guarded files, is an infrastructure error and is never cached. `key` hashes everything
    the run depends on (the snapshot and where it lies, the arguments, the environment): a green
    run with the same key is not repeated, its data is reused."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_file, report_log, meta = data_dir / ".coverage", data_dir / "baseline.jsonl", data_dir / "baseline.json"
    baseline = _cached_baseline(meta, data_file, key)
    fresh = baseline is None
    if baseline is None:
        for stale in (data_file, report_log, meta):
            stale.unlink(missing_ok=True)
        baseline = _run_baseline(work, data_dir, tests, pytest_args, guarded_files)

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
        meta.write_text(json.dumps({"key": key, "durations": baseline.durations, "seconds": baseline.seconds}))
    tests_by_line = {f: _tests_by_line(files[f]) for f in guarded_files if f in files}
    return CoverageResult(
        baseline=baseline,
        regions=tuple(_region_coverage(r, files.get(r.file), tests_by_line.get(r.file, {})) for r in regions),
        tests_by_line=tests_by_line,
        first_lines={f: _first_lines(work / f) for f in guarded_files},
    )


def _run_baseline(work: Path, data_dir: Path, tests: Iterable[str], pytest_args: Iterable[str],
                  guarded_files: list[str]) -> Baseline:
    """The suite under coverage, importing the snapshot's code; checks where it came from."""
    data_file, report_log, probe = data_dir / ".coverage", data_dir / "baseline.jsonl", data_dir / "imports.json"
    probe.unlink(missing_ok=True)
    sources = sorted({str(Path(f).parent) if Path(f).parent != Path(".") else "." for f in guarded_files})
    args = ["-m", "pytest", *tests, *pytest_args, "-p", "no:cacheprovider", "-p", "gate.import_probe", "-q",
            *(f"--cov={s}" for s in sources), "--cov-branch", "--cov-context=test", "--cov-report=",
            f"--report-log={report_log}"]
    modules = [imports.module_name(work, f) for f in guarded_files]
    completed = run_python(args, cwd=work, env={
        "COVERAGE_FILE": str(data_file),
        "PYTHONPATH": imports.python_path(work, imports.import_roots(work, guarded_files)),
        "GATE_PROBE_MODULES": json.dumps(modules), "GATE_PROBE_OUT": str(probe)})
    baseline = _read_baseline(report_log, completed.returncode, completed.output, completed.seconds)
    try:
        imported = json.loads(probe.read_text())
    except (OSError, ValueError):
        raise InfrastructureError("the baseline did not say where it imported the guarded modules from "
                                  "(the gate's pytest plugin gate.import_probe did not run)") from None
    stray = imports.outside(work, imported)
    if stray is not None:
        raise InfrastructureError(
            f"the suite imported {stray[0]} from {stray[1]}, outside the gate's snapshot {work}: an editable "
            "install, PYTHONPATH or a sys.path change in the tests points it at another tree")
    return baseline


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
    child = Child(["-P", "-m", "gate.coverage_step", str(data_dir / ".coverage"), str(report_dir / "coverage"),
                   stamp], cwd=work)
    try:
        yield
    except BaseException:
        child.stop()
        raise
    done = child.finish()
    if done.returncode != 0:
        raise InfrastructureError(f"coverage.py's HTML report failed: {_last_line(done.output)}")


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
    if data.get("key") != key or not data_file.exists():
        return None
    return Baseline(durations=data["durations"], seconds=data["seconds"], cached=True)


def _read_baseline(report_log: Path, returncode: int, output: str, seconds: float) -> Baseline:
    if returncode == 4:
        raise ConfigError(f"pytest rejected the test arguments: {_last_line(output)}")
    reports = [json.loads(line) for line in report_log.read_text().splitlines()] if report_log.exists() else []
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
        raise InfrastructureError(f"the baseline run exited {returncode}: {_last_line(output)}")
    return Baseline(durations=dict(durations), seconds=seconds)


def _reason(report: dict) -> str:
    longrepr = report.get("longrepr")
    if isinstance(longrepr, dict):
        crash = (longrepr.get("reprcrash") or {}).get("message", "")
        return " ".join(crash.split())[:200] or "failed"
    if isinstance(longrepr, str):
        return " ".join(longrepr.splitlines()[-1:])[:200]
    return f"{report.get('when', 'collect')} failed"


def _region_coverage(region: Region, data: dict | None, tests: dict[int, frozenset[str]]) -> RegionCoverage:
    if data is None:
        return RegionCoverage(region, False, (), ())
    executed = set(data["executed_lines"])
    lines = set(region.lines)
    if region.kind is RegionKind.CLEANUP:  # its `def` line runs at import; only the body counts
        lines -= set(range(region.start, region.entry_line))
    reached = sorted(frozenset().union(*(tests.get(line, frozenset()) for line in lines)))
    missing = tuple((a, b) for a, b in data.get("missing_branches", []) if a in lines)
    body = lines - set(range(region.start, region.entry_line)) if region.kind is RegionKind.EXCEPT else lines
    statements = body & (executed | set(data.get("missing_lines", [])))
    taken = tuple((a, b) for a, b in data.get("executed_branches", []) if a in lines)
    return RegionCoverage(region, region.entry_line in executed, tuple(reached), missing,
                          entering=tuple(sorted(tests.get(region.entry_line, frozenset()))),
                          statements_run=tuple(sorted(statements & executed)),
                          statements_missed=tuple(sorted(statements - executed)), branches_taken=taken)


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


def _last_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


@dataclass(frozen=True)
class UnitIndex:
    """Which tests reached each function in the last full-suite run: what lets `--changed` run
    only the tests of the functions a change touched."""

    tests_by_unit: dict[tuple[str, str], frozenset[str]]


def write_unit_index(data_dir: Path, coverage: CoverageResult, sources: dict[str, str]) -> None:
    units = {}
    for file, source in sources.items():
        for name, start, end in unit_spans(source):
            units[f"{file}::{name}"] = sorted(coverage.tests_for(file, start, end))
    (data_dir / "units.json").write_text(json.dumps(units))


def load_unit_index(data_dir: Path) -> UnitIndex | None:
    try:
        units = json.loads((data_dir / "units.json").read_text())
    except (OSError, ValueError):
        return None
    return UnitIndex({tuple(key.split("::", 1)): frozenset(tests) for key, tests in units.items()})


if __name__ == "__main__":  # the HTML report's child process: python -P -m gate.coverage_step DATA DIR
    import sys

    _write_html(*sys.argv[1:4])
