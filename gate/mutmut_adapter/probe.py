"""`python -P -m gate.mutmut_adapter.probe SPEC OUT`: what a survivor's tests could have seen.

The spec groups the survivors by function (each group's tests in the order likeliest to show a
difference first). This process imports the code and the tests once; every run then forks from it
with the same random seeds, at most `workers` at a time, and stops after `RUN_SECONDS`. A group's
tests run in rounds of doubling time (`chunks`): for each round the original runs twice (what
differs between those two runs, a clock, is no effect of the mutant; a test that fails on the
original under observation is left out and named), then each mutant that has shown no difference
yet runs the round's observable tests, comparing each test as it ends with the original's
(`gate.observation`), and stops at the first difference. A difference in the state the call left
behind must show again in a second run of the mutant (a thread's timing can differ between any two
runs). Where the difference is a value a test can read, the assertion it lacks
(`gate.suggestions`) is put into the test's module in memory, and that test runs on the original
(it must pass) and on the mutant (it must fail): only a suggestion that passed both is reported.
What finishes a survivor already begun runs before what begins another. Nothing starts after the
spec's deadline, and what runs then is stopped: those survivors come back as not reached."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import json
import os
import random
import select
import signal
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gate import observation
from gate.mutmut_adapter import internals as mutmut
from gate.mutmut_adapter.recorder import Recorder
from gate.suggestions import Suggestion, candidates

RUN_SECONDS = 120
"""The most one run of a survivor's tests may take."""

MORE_DIFFERENCES = 4
"""Later calls' differences kept beside the first, for a suggestion the first cannot give."""
MOST_UNSTABLE = 4
"""Differences two runs of a mutant disagreed on, past which its round counts as showing none."""
MOST_TRIES = 3
"""Suggested assertions verified at most per survivor (each costs two runs of one test)."""

FIRST_ROUND_SECONDS = 1.0
FIRST_ROUND_TESTS = 3
"""The first round of a group's tests: this much baseline time, and at least this many tests."""


def _one_line(report: Any) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr or report.outcome)
    return " ".join(text.split())[:300]


class _Plugin:
    """Points the recorder at each test as it starts and ends; wraps the targets once per process,
    when the first test starts (by then the tests imported the mutated copy). With a `compare`,
    each test is compared as it ends and the session stops at the first difference."""

    wrapped: set[tuple[str, str]] = set()
    """(module, table entry) already wrapped: a function's original is shared by its mutants."""

    def __init__(self, recorder: Recorder, target: tuple[str, str],
                 compare: Callable[[str, list[dict[str, Any]]], dict[str, Any] | None] | None = None) -> None:
        self.recorder, self.target, self.compare = recorder, target, compare
        self.tests: dict[str, dict[str, Any]] = {}
        self.found: dict[str, Any] | None = None

    def _wrap_target(self) -> None:
        module_name, key = self.target
        module = importlib.import_module(module_name)
        table_name = mutmut.mutants_table(key)
        table = getattr(module, table_name)
        for entry in (mutmut.ORIGINAL_KEY, key):
            if (module_name, f"{table_name}[{entry}]") not in self.wrapped and entry in table:
                self.wrapped.add((module_name, f"{table_name}[{entry}]"))
                table[entry] = self.recorder.wrap(table[entry], module)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> Any:
        obj = getattr(item, "obj", None)
        code = getattr(inspect.unwrap(getattr(obj, "__func__", obj)), "__code__", None) if obj is not None else None
        self.recorder.start_test(item.nodeid, code)
        self._wrap_target()
        yield
        if self.compare is not None and self.tests.get(item.nodeid, {}).get("passed"):
            self.found = self.compare(item.nodeid, self.recorder.calls.get(item.nodeid, []))
            if self.found is not None:
                self.found["where"] = _defined_at(code)
                item.session.shouldstop = "the first difference was found"

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: Any) -> Any:
        yield
        self.recorder.finish_test()

    def pytest_runtest_logreport(self, report: Any) -> None:
        seen = self.tests.setdefault(report.nodeid, {"passed": True})
        if report.failed or (report.skipped and report.when != "teardown"):
            if seen["passed"]:
                seen.update(passed=False, message=f"{report.outcome} in {report.when}: {_one_line(report)}")


def _defined_at(code: Any) -> list[Any] | None:
    """[file relative to here, first line] of a test function's code: where to change it."""
    if code is None:
        return None
    try:
        return [Path(code.co_filename).resolve().relative_to(Path.cwd().resolve()).as_posix(), code.co_firstlineno]
    except ValueError:  # defined outside the project
        return None


def _same_seeds() -> None:
    """The same random draws in the original's run as in the mutant's (a random-replacement cache
    evicts the same key in both), for the generators the code may use."""
    random.seed(0)
    for name, seed in (("numpy.random", "seed"), ("torch", "manual_seed")):
        module = sys.modules.get(name)
        if module is not None:
            getattr(module, seed)(0)


def _pytest(args: list[str], under_test: str, plugins: list[Any]) -> int:
    os.environ["MUTANT_UNDER_TEST"] = under_test
    _same_seeds()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return int(pytest.main(args, plugins=plugins))


@dataclass
class _Task:
    work: Callable[[], Any]
    """Runs in the forked child; returns what goes back (JSON)."""
    done: Callable[[Any], None]
    """Runs here with that (None when the child died or was stopped)."""


@dataclass
class _Pool:
    """Forked children, at most `workers` at a time, none started after `deadline` (wall time)."""

    workers: int
    deadline: float | None
    queue: list[_Task] = field(default_factory=list)
    running: dict[int, tuple[_Task, int, int, list[bytes]]] = field(default_factory=dict)
    """By read end of its pipe: the task, the child's pid, the read end, what it wrote so far."""
    out_of_time: bool = False

    def submit(self, task: _Task, first: bool = False) -> None:
        """Queue `task`; `first`: ahead of the rest (what finishes a survivor already begun goes
        before what begins another, so a budget ends with survivors explained, not half-explained)."""
        if first:
            self.queue.insert(0, task)
        else:
            self.queue.append(task)

    def run(self) -> None:
        while self.queue or self.running:
            while self.queue and len(self.running) < self.workers and not self._late():
                self._start(self.queue.pop(0))
            if self._late():
                self._stop_all()
                return
            timeout = None if self.deadline is None else max(0.0, self.deadline - time.time())
            ready, _, _ = select.select(list(self.running), [], [], timeout)
            for fd in ready:
                task, pid, _, chunks = self.running[fd]
                chunk = os.read(fd, 1 << 16)
                if chunk:
                    chunks.append(chunk)
                    continue
                del self.running[fd]
                os.close(fd)
                os.waitpid(pid, 0)
                task.done(_parsed(b"".join(chunks)))

    def _late(self) -> bool:
        self.out_of_time = self.out_of_time or (self.deadline is not None and time.time() >= self.deadline)
        return self.out_of_time

    def _start(self, task: _Task) -> None:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: run, report, and leave without unwinding into the parent's code
            os.close(read)
            result: Any = None
            try:
                signal.alarm(RUN_SECONDS)  # a run that hangs is stopped, and comes back empty
                result = task.work()
            finally:
                with os.fdopen(write, "w") as out:
                    out.write(json.dumps(result) if result is not None else "")
                os._exit(0)
        os.close(write)
        self.running[read] = (task, pid, read, [])

    def _stop_all(self) -> None:
        for task, pid, fd, _ in self.running.values():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            os.close(fd)
        self.running.clear()
        self.queue.clear()


def _parsed(text: bytes) -> Any:
    """What a child wrote, or None when it wrote nothing whole (it died, or its alarm went off)."""
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def chunks(tests: list[str], durations: dict[str, float]) -> list[list[str]]:
    """`tests` (in order) in rounds of doubling baseline time, from `FIRST_ROUND_SECONDS` (and at
    least `FIRST_ROUND_TESTS`): a mutant stops at the first test that shows a difference, so the
    original's runs are made only for the rounds some mutant still needs."""
    rounds: list[list[str]] = [[]]
    limit, spent = FIRST_ROUND_SECONDS, 0.0
    for test in tests:
        if rounds[-1] and spent >= limit and (len(rounds) > 1 or len(rounds[0]) >= FIRST_ROUND_TESTS):
            rounds.append([])
            limit, spent = limit * 2, 0.0
        rounds[-1].append(test)
        spent += durations.get(test, 0.0)
    return [r for r in rounds if r]


class _Group:
    """The survivors of one function with the same tests, round by round of its tests (`chunks`):
    the original's two runs of a round, then each mutant that showed no difference yet."""

    def __init__(self, probe: Probe, spec: dict[str, Any]) -> None:
        self.probe, self.module, self.short = probe, spec["module"], spec["short"]
        self.tests, self.mutants = list(spec["tests"]), list(spec["mutants"])
        self.rounds = chunks(self.tests, spec.get("durations", {}))
        self.originals: dict[int, list[dict[str, Any]]] = {}
        self.waiting: dict[int, list[str]] = {}
        self.excluded: dict[str, str] = {}
        self.calls_seen = False

    def start(self) -> None:
        for name in self.mutants:
            self.probe.found[name] = {"status": "running", "excluded": self.excluded, "tests": len(self.tests)}
        self._need(0, self.mutants)

    def _need(self, index: int, names: list[str]) -> None:
        """`names` wait for round `index`: its original's runs start with the first to need them."""
        if index not in self.waiting:
            self.waiting[index], self.originals[index] = [], []
            for _ in range(2):
                self.probe.pool.submit(_Task(lambda: self._run("", self.rounds[index]),
                                             lambda run: self._original_done(index, run)), first=index > 0)
        self.waiting[index] += names
        if len(self.originals[index]) == 2:
            self._mutants_of(index, names)

    def _run(self, under_test: str, tests: list[str], compare: Any = None) -> dict[str, Any]:
        recorder = Recorder()
        # the original's entry, and the mutant's that this run tests (a group's mutants share a table)
        plugin = _Plugin(recorder, (self.module, under_test.rpartition(".")[2] or self.short), compare)
        code = _pytest([*self.probe.args, *tests], under_test, [plugin])
        return {"exit_code": code, "tests": plugin.tests, "calls": recorder.calls, "difference": plugin.found}

    def _original_done(self, index: int, run: dict[str, Any] | None) -> None:
        self.originals[index].append(run or {"exit_code": -1, "tests": {}, "calls": {}})
        if len(self.originals[index]) == 2:
            self.excluded.update(self._excluded(index))
            self.calls_seen = self.calls_seen or any(any(r["calls"].values()) for r in self.originals[index])
            self._mutants_of(index, self.waiting[index])

    def _mutants_of(self, index: int, names: list[str]) -> None:
        for name in names:
            self._mutant_round(index, name, set(), None)

    def _mutant_round(self, index: int, name: str, unstable: set[tuple[str, str]], seen: dict[str, Any] | None
                      ) -> None:
        """One run of the mutant over round `index`, stopping at the first difference not in
        `unstable`; `seen` is the one an earlier run of it found, which this run must find again."""
        observable = [t for t in self.rounds[index] if t not in self.excluded]
        if not observable:
            self._no_difference(index, name)
            return
        self.probe.pool.submit(_Task(lambda: self._run(name, observable, self._compare_in(index, unstable)),
                                     lambda run: self._mutant_done(index, name, run, unstable, seen)), first=True)

    def _excluded(self, index: int) -> dict[str, str]:
        """The tests of a round that cannot be compared, with why: they failed (or were skipped, or
        not run) on the original under observation, or a call of theirs could not be recorded."""
        excluded = {}
        for test in self.rounds[index]:
            for run in self.originals[index]:
                outcome = run["tests"].get(test)
                if outcome is None:
                    why = ("did not run on the original under the probe (its run ended with exit "
                           f"{run['exit_code']})")
                elif not outcome["passed"]:
                    why = f"{outcome['message']} on the original under the probe"
                else:
                    why = observation.unobserved(run["calls"].get(test, []))
                if why is not None:
                    excluded[test] = why
                    break
        return excluded

    def _compare_in(self, index: int, unstable: set[tuple[str, str]]
                    ) -> Callable[[str, list[dict[str, Any]]], dict[str, Any] | None]:
        def compare(test: str, calls: list[dict[str, Any]]) -> dict[str, Any] | None:
            first, again = (run["calls"].get(test, []) for run in self.originals[index])
            if observation.unobserved(calls) is not None:
                return None
            found = [d for d in observation.differences(first, calls, again) if (test, d["what"]) not in unstable]
            if not found:
                return None
            # the first names the difference; any of them may give the suggestion
            return {**found[0], "test": test, "others": found[1:MORE_DIFFERENCES + 1]}
        return compare

    def _mutant_done(self, index: int, name: str, run: dict[str, Any] | None, unstable: set[tuple[str, str]],
                     seen: dict[str, Any] | None) -> None:
        """A difference in what the call left behind counts once a second run of the mutant shows it
        too, as the original's two runs agree: what a thread's timing changed from one run to the
        next is not the mutant's doing. What the call itself returned or raised needs no second run."""
        result = self.probe.found[name]
        if run is None:  # the machine's doing, maybe (a loaded CI machine): not cached, tried again next run
            result.update(status="died")
            return
        self.calls_seen = self.calls_seen or any(run["calls"].values())
        difference = run["difference"]
        if difference is None and seen is None:
            self._no_difference(index, name)
            return
        key = None if difference is None else (difference["test"], difference["what"])
        settled = seen is None and difference is not None and observation.of_the_call_itself(difference)
        if not settled and (seen is None or key != (seen["test"], seen["what"])):
            if seen is not None:  # the two runs disagree: neither difference is the mutant's for sure
                unstable = unstable | {(seen["test"], seen["what"])} | ({key} if key else set())
                difference = None
            if len(unstable) > MOST_UNSTABLE:
                self._no_difference(index, name)
            else:
                self._mutant_round(index, name, unstable, difference)
            return
        result.update(status="done", difference=difference, calls_seen=True)
        self.probe.verify(name, difference, result)

    def _no_difference(self, index: int, name: str) -> None:
        if index + 1 < len(self.rounds):
            self._need(index + 1, [name])
            return
        result = self.probe.found[name]
        observable = [t for t in self.tests if t not in self.excluded]
        result.update(status="done" if observable else "not observed", difference=None, calls_seen=self.calls_seen)


class Probe:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.args = ["-p", "no:cacheprovider", "-q", "--rootdir=.", *spec["pytest_args"]]
        self.pool = _Pool(max(1, int(spec.get("workers", 1))), spec.get("deadline"))
        self.groups = [_Group(self, g) for g in spec["groups"]]
        self.found: dict[str, dict[str, Any]] = {}

    def run(self) -> dict[str, Any]:
        all_tests = sorted({t for g in self.groups for t in g.tests})
        # import the code and the tests once (torch among them); each run then forks from here, so
        # that no run sees what an earlier one left behind (a cache, a counter, a patched global)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            pytest.main([*self.args, "--collect-only", *all_tests])
        for group in self.groups:
            group.start()
        self.pool.run()
        for group in self.groups:
            for name in group.mutants:
                result = self.found.setdefault(name, {"status": "budget"})
                if result["status"] == "running":
                    result["status"] = "budget"
                # explained, but its suggestion's verification was cut short: explained again next time
                result["unfinished"] = bool(result.pop("verifying", False))
        return self.found

    def verify(self, name: str, difference: dict[str, Any], result: dict[str, Any]) -> None:
        """Try each suggested assertion until one passes on the original and fails on the mutant;
        `result["suggestion"]` is that one. The test is found where its code was defined (a test
        inherited from a base class in another module is changed there)."""
        test = difference["test"]
        file, line = difference.get("where") or (test.split("::", 1)[0], None)
        try:
            source = Path(file).read_text()
        except (OSError, UnicodeDecodeError):
            return
        tried = [c for d in (difference, *difference.get("others", ()))
                 for c in candidates(test, source, d, file=file, line=line)]
        self._try(name, tried[:MOST_TRIES], source, result)

    def _try(self, name: str, tried: list[Suggestion], source: str, result: dict[str, Any]) -> None:
        # until the last candidate is judged: a budget that ends first leaves the survivor unfinished
        result["verifying"] = bool(tried)
        if not tried:
            return
        suggestion, rest = tried[0], tried[1:]
        changed = suggestion.applied_to(source)
        codes: dict[str, int | None] = {}

        def ran(which: str, outcome: Any) -> None:
            codes[which] = outcome
            if len(codes) < 2:
                return
            if codes["original"] == 0 and codes["mutant"] == 1:
                result.update(suggestion=suggestion.to_dict(), verifying=False)
            else:
                self._try(name, rest, source, result)

        for which, under_test in (("original", ""), ("mutant", name)):
            self.pool.submit(_Task(lambda under_test=under_test: self._run_changed(suggestion, changed, under_test),
                                   lambda outcome, which=which: ran(which, outcome)), first=True)

    def _run_changed(self, suggestion: Suggestion, changed: str, under_test: str) -> int:
        """In the forked child: the test's module (and the test's own, when it inherits the test)
        executed again from `changed` in memory, then the test run. Nothing is written to disk."""
        test_file = suggestion.test.split("::", 1)[0]
        _reexecute(suggestion.file, changed)
        if Path(test_file).resolve() != Path(suggestion.file).resolve():
            _reexecute(test_file, Path(test_file).read_text())
        return _pytest([*self.args, suggestion.test], under_test, [])


def _reexecute(file: str, text: str) -> None:
    """The module imported from `file`, replaced in `sys.modules` by one executed from `text`."""
    target = Path(file).resolve()
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and Path(path).resolve() == target:
            fresh = types.ModuleType(name, module.__doc__)
            for attribute in ("__file__", "__package__", "__path__", "__spec__", "__loader__", "__cached__"):
                if hasattr(module, attribute):
                    setattr(fresh, attribute, getattr(module, attribute))
            sys.modules[name] = fresh
            exec(compile(text, path, "exec"), vars(fresh))
            return


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    from gate.mutmut_adapter.runner import _import_from_mutants

    os.environ["PY_IGNORE_IMPORTMISMATCH"] = "1"
    mutmut.setup_source_paths()
    _import_from_mutants(spec["import_roots"])
    os.chdir(mutmut.MUTANTS_DIR)
    return Probe(spec).run()


if __name__ == "__main__":
    spec_path, out_path = sys.argv[1:3]
    result = probe(json.loads(Path(spec_path).read_text()))
    Path(out_path).write_text(json.dumps(result))
