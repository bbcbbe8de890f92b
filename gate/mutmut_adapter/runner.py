"""The run phase, in the driver process: mutmut's fork server (torch is not fork-safe), whose
workers each run one mutant's tests in the order given, under a memory limit, and write who
killed it; the forced-failure and clean-copy checks go through the same server (`RunState`)."""

from __future__ import annotations

import contextlib
import gc
import io
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from gate.errors import InfrastructureError
from gate.levers import levers_off
from gate.mutmut_adapter import internals as mutmut
from gate.mutmut_adapter.kept_session import KeptSession
from gate.mutmut_adapter.run_state import RunState
from gate.scenario import PytestExit, Scenario
from gate.wire import driver as wire


def run(spec: wire.RunSpec) -> wire.RunResult:
    """Start the fork server, read the jobs from stdin, and report each outcome as its checks pass."""
    results_dir = wire.results_dir()
    wire.clear_results(results_dir)
    os.environ["PY_IGNORE_IMPORTMISMATCH"] = "1"
    mutmut.setup_source_paths()
    _import_from_mutants(spec.setup.import_roots)
    mutmut.set_mutant_under_test("")
    runner = mutmut.ForkServerRunner(max_workers=max(1, spec.setup.max_workers),
                                     test_runner_class=_gate_runner_class(results_dir, spec.memory_mb),
                                     test_runner_args={}, max_restarts=3)
    runner.startup()  # the fork server imports the code and collects the tests while the gate decides
    try:
        order = sys.stdin.readline()
        if not order.strip():  # stdin closed without jobs (the gate stopped): nothing to test
            return wire.RunResult(tested=0, clean_checks=0)
        work = wire.read_jobs(order)
        state = RunState(results_dir, list(work.jobs), work.check_cpu_limit)
        _test(runner, state, list(work.jobs), list(spec.setup.tests))
        runner.signal_work_complete()
    except mutmut.ForkServerCrashError as exc:
        raise InfrastructureError(f"mutmut's fork server crashed: {str(exc).splitlines()[0]}") from exc
    except BaseException:
        runner.stop_all_workers()
        raise
    finally:
        runner.shutdown()
    return wire.RunResult(tested=len(work.jobs), clean_checks=state.clean_checks)


def _test(runner: Any, state: RunState, jobs: list[wire.MutantJob], tests: list[str]) -> None:
    """The checks go through the same fork server and code path as the mutants: a forced failure
    must fail the tests (they really run the mutated copy), and every test that kills a mutant must
    pass on the unmutated copy (a kill by a test that fails anyway is no kill). Outcomes wait for
    the checks they depend on."""
    _submit(runner, state, state.forced_failure(tests), tests, 0.0)
    for job in jobs:
        while not runner.has_capacity():
            _collect_one(runner, state)
        _submit(runner, state, job.scenario, state.ordered_tests(job), job.estimated)
    _drain(runner, state)
    # a timeout counts only once the mutant timed out again alone, with twice the limit
    while state.retries:
        retry = state.retries.pop(0)
        _submit(runner, state, retry.scenario, state.ordered_tests(retry), retry.estimated)
        _drain(runner, state)


def _submit(runner: Any, state: RunState, scenario: Scenario, tests: list[str], estimated: float) -> None:
    """`scenario` to the fork server, under the name mutmut's trampolines see, its tests in this order."""
    runner.submit(state.send(scenario), tests, scenario.cpu_limit, estimated)


def _collect_one(runner: Any, state: RunState) -> None:
    """The next result, and the checks it calls for."""
    state.collect(runner.wait_for_result())
    while state.checks_to_submit:
        check = state.checks_to_submit.pop(0)
        _submit(runner, state, check, list(check.tests), 0.0)


def _drain(runner: Any, state: RunState) -> None:
    while runner.pending_count() > 0:
        _collect_one(runner, state)


def _import_from_mutants(roots: tuple[str, ...]) -> None:
    """mutmut puts `mutants/`, `mutants/src` and `mutants/source` first on the path; the guarded
    files' own import roots go there too, and the unmutated copies of them leave it, so that the
    tests import the mutated copy whatever the user installed (an editable install's `.pth`)."""
    for root in reversed(roots):
        mutated = (Path(mutmut.MUTANTS_DIR) / root).resolve()
        original = Path(root).resolve()
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != original]
        if str(mutated) in sys.path:
            sys.path.remove(str(mutated))
        sys.path.insert(0, str(mutated))


class FirstFailure:
    """Who failed first, and with what (`MemoryError: ...`), for the reports."""

    def __init__(self) -> None:
        self.nodeid: str | None = None
        self.message = ""

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.failed and self.nodeid is None:
            self.nodeid = report.nodeid
            crash = getattr(report.longrepr, "reprcrash", None)
            self.message = " ".join(str(getattr(crash, "message", "")).split())[:300]

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed and self.nodeid is None:
            self.nodeid = f"{report.nodeid or '<collection>'} (collection)"


class Collected:
    """The node ids one collection sees."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def pytest_collection_modifyitems(self, items: Any) -> None:
        self.ids |= {item.nodeid for item in items}


def _gate_runner_class(results_dir: Path, memory_mb: int) -> type:
    """mutmut's PytestRunner with the gate's additions (`GateRunner`), for this run's results
    folder and memory limit. Built here: mutmut's class exists only once mutmut is configured."""
    return type("GatePytestRunner", (GateRunner, mutmut.PytestRunner),
                {"results_dir": results_dir, "memory_mb": memory_mb})


class GateRunner:
    """What the gate adds to mutmut's PytestRunner (mixed in before it): a memory limit, a session
    collected once in the fork server, and a result file naming the first failing test. A worker
    that dies before writing it crashed (or timed out); one that writes it finished."""

    results_dir: Path
    memory_mb: int
    collected: frozenset[str] | None = None
    """The node ids the fork server's warm-up collected; None without a warm-up."""
    kept: KeptSession | None = None
    """The fork server's collected session, which each worker runs its tests in; None where it
    could not be kept (then each worker runs `pytest.main`)."""
    recorder: FirstFailure | None = None
    """The kept session's recorder: each worker gets its own copy through the fork."""

    def warm_up(self) -> None:
        if mutmut.config().forkserver_warmup == mutmut.ForkServerWarmup.COLLECT:
            self._keep_session()
            if self.kept is None:
                collector = Collected()
                with mutmut.change_cwd(mutmut.MUTANTS_DIR):
                    self.execute_pytest(["--collect-only", "-qqq", *self._pytest_add_cli_args_test_selection],
                                        plugins=[collector])
                self.collected = frozenset(collector.ids)
        else:
            super().warm_up()  # type: ignore[misc]
        # Everything the fork server imported (torch, the tests) is now permanent: each worker's
        # pytest session ends with gc.collect(), which would otherwise walk all of it again.
        if "freeze" not in levers_off():
            gc.freeze()

    def _keep_session(self) -> None:
        if "kept-session" in levers_off():
            return
        recorder = FirstFailure()
        args = ["--rootdir=.", "--tb=native",
                *self._pytest_args_regular_run(self._pytest_add_cli_args_test_selection),
                *self._pytest_add_cli_args]
        try:
            with mutmut.change_cwd(mutmut.MUTANTS_DIR):
                self.kept = KeptSession(args, [recorder])
        except Exception:  # pytest's internals moved, or the collection failed: pytest.main per worker
            self.kept = None
            return
        self.recorder, self.collected = recorder, self.kept.ids

    def run_tests(self, *, mutant_name: str | None, tests: Any) -> int:
        if mutant_name is None:
            return super().run_tests(mutant_name=None, tests=tests)  # type: ignore[misc]
        _limit_address_space(self.memory_mb)
        started = time.monotonic()
        selection = stable_selection(list(tests), self.collected)
        if selection != list(tests):  # the time limit was set for the tests as given
            wire.write_widened(self.results_dir, mutant_name, wire.Widened(tuple(selection)))
        items = self.kept.select(selection) if self.kept is not None else None
        recorder = self.recorder if items is not None and self.recorder is not None else FirstFailure()
        code, detail = self._pytest(selection, items, recorder)
        wire.write_result(self.results_dir, mutant_name, wire.WorkerResult(
            exit_code=code, killed_by=recorder.nodeid, seconds=time.monotonic() - started,
            detail=detail or recorder.message))
        return code

    def _pytest(self, selection: list[str], items: list[Any] | None, recorder: FirstFailure) -> tuple[int, str]:
        """pytest's exit code for `selection` (the kept session's `items`, or a `pytest.main` of its
        own), and what went wrong where pytest could not run it."""
        errors = io.StringIO()
        try:
            with mutmut.change_cwd(mutmut.MUTANTS_DIR), contextlib.redirect_stderr(errors):
                if items is not None and self.kept is not None:
                    return self.kept.run(items), ""
                return int(self.execute_pytest(self._pytest_args_regular_run(selection), plugins=[recorder])), ""
        except mutmut.BadTestExecutionCommandsException:  # pytest refused its arguments: not the mutant's doing
            return int(PytestExit.USAGE_ERROR), selection_error(errors.getvalue(), selection, self.collected)
        except Exception as exc:
            return int(PytestExit.USAGE_ERROR), f"{type(exc).__name__}: {_first_line(str(exc))}"

    # mutmut's PytestRunner provides these
    execute_pytest: Any
    _pytest_args_regular_run: Any
    _pytest_add_cli_args: Any
    _pytest_add_cli_args_test_selection: Any


def stable_selection(tests: list[str], collected: frozenset[str] | None) -> list[str]:
    """The arguments to hand pytest for `tests` (the measurement's node ids, or the suite's own
    arguments, which pass unchanged). A node id this collection does not know (a parametrize id
    built from the time, say, which changes on every collection) falls back to its test function,
    or where that is gone too, to its file: more tests run, never fewer."""
    if collected is None:
        return tests
    picked: list[str] = []
    for test in tests:
        if "::" not in test or test in collected:  # an option, a path, or an id pytest will find
            picked.append(test)
            continue
        function = test.split("[", 1)[0]
        found = any(c == function or c.startswith(f"{function}[") for c in collected)
        chosen = function if found else test.split("::", 1)[0]
        if chosen not in picked:
            picked.append(chosen)
    return picked


def selection_error(stderr: str, selection: list[str], collected: frozenset[str] | None) -> str:
    """pytest's own one-line complaint (`not found: tests/x.py::test_y[...]`), never its arguments."""
    for line in stderr.splitlines():
        if line.strip().startswith("ERROR:"):
            return _first_line(line.strip().removeprefix("ERROR:").strip())
    unknown = [t for t in selection if collected is not None and "::" in t and t not in collected]
    return f"not found: {unknown[0]}" if unknown else "pytest rejected its arguments"


def _first_line(text: str, limit: int = 300) -> str:
    lines = text.strip().splitlines()
    return lines[0][:limit] if lines else ""


def _limit_address_space(memory_mb: int) -> None:
    """Let a worker map `memory_mb` more than the fork server had, so a runaway mutant fails fast."""
    if memory_mb <= 0:
        return
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * resource.getpagesize()
    limit = mapped + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

