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
import dataclasses
import importlib
import inspect
import io
import os
import random
import select
import signal
import sys
import time
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gate import observation
from gate.mutmut_adapter import internals as mutmut
from gate.mutmut_adapter.naming import MUTANT_UNDER_TEST, MUTANTS_DIR, ORIGINAL_KEY, mutants_table, under_test
from gate.mutmut_adapter.recorder import Recorder
from gate.result import Suggestion
from gate.scenario import Kind, Scenario, Verdict, cpu_limit, verdict_of
from gate.suggestions import candidates
from gate.wire import codec
from gate.wire.probe import (
    FORMAT,
    NO_EXIT,
    Call,
    ChangedRun,
    Found,
    ProbeGroup,
    ProbeResults,
    ProbeSpec,
    RunReport,
    Status,
    SurvivorResult,
    Outcome,
    Where,
    not_reached,
)

RUN_SECONDS = 120
"""The most one run of a survivor's tests may take."""
MESSAGE_CHARACTERS = 300
"""The most characters kept of how a test did not pass (its crash's message, on one line)."""

MORE_DIFFERENCES = 4
"""Later calls' differences kept beside the first, for a suggestion the first cannot give."""
MOST_UNSTABLE = 4
"""Differences two runs of a mutant disagreed on, past which its round counts as showing none."""
MOST_TRIES = 3
"""Suggested assertions verified at most per survivor (each costs two runs of one test)."""

FIRST_ROUND_SECONDS = 1.0
FIRST_ROUND_TESTS = 3
"""The first round of a group's tests: this much measured time, and at least this many tests."""

Compare = Callable[[str, tuple[Call, ...]], Found | None]


def _one_line(report: Any) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr or report.outcome)
    return " ".join(text.split())[:MESSAGE_CHARACTERS]


class _Plugin:
    """Points the recorder at each test as it starts and ends; wraps the targets once per process,
    when the first test starts (by then the tests imported the mutated copy). With a `compare`,
    each test is compared as it ends and the session stops at the first difference."""

    wrapped: set[tuple[str, str]] = set()
    """(module, table entry) already wrapped: a function's original is shared by its mutants."""

    def __init__(self, recorder: Recorder, target: tuple[str, str], compare: Compare | None = None) -> None:
        self.recorder, self.target, self.compare = recorder, target, compare
        self.tests: dict[str, Outcome] = {}
        self.found: Found | None = None

    def _wrap_target(self) -> None:
        module_name, key = self.target
        module = importlib.import_module(module_name)
        table_name = mutants_table(key)
        table = getattr(module, table_name)
        for entry in (ORIGINAL_KEY, key):
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
        if self.compare is not None and item.nodeid in self.tests and self.tests[item.nodeid].passed:
            found = self.compare(item.nodeid, self.recorder.observed(item.nodeid))
            if found is not None:
                self.found = dataclasses.replace(found, where=_defined_at(code))
                item.session.shouldstop = "the first difference was found"

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: Any) -> Any:
        yield
        self.recorder.finish_test()

    def pytest_runtest_logreport(self, report: Any) -> None:
        seen = self.tests.setdefault(report.nodeid, Outcome(passed=True, message=None))
        if report.failed or (report.skipped and report.when != "teardown"):
            if seen.passed:
                self.tests[report.nodeid] = Outcome(passed=False,
                                                        message=f"{report.outcome} in {report.when}: {_one_line(report)}")


def _defined_at(code: Any) -> Where | None:
    """Where a test function's code was defined (its file relative to here, its first line): where
    to change it."""
    if code is None:
        return None
    try:
        return Where(file=Path(code.co_filename).resolve().relative_to(Path.cwd().resolve()).as_posix(),
                     line=code.co_firstlineno)
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


def _scenario(mutant: str, tests: list[str] | tuple[str, ...]) -> Scenario:
    """One of the probe's runs: of `tests` on the original (`mutant` "") or on `mutant`."""
    return Scenario(Kind.PROBE_MUTANT if mutant else Kind.PROBE_ORIGINAL, tuple(tests), cpu_limit(RUN_SECONDS),
                    mutant=mutant)


def _pytest(args: list[str], scenario: Scenario, plugins: list[Any]) -> int:
    os.environ[MUTANT_UNDER_TEST] = under_test(scenario)
    _same_seeds()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return int(pytest.main([*args, *scenario.tests], plugins=plugins))


@dataclass
class _Task:
    work: Callable[[], Any]
    """Runs in the forked child; returns a message of the `reply` kind, which goes back."""
    reply: type
    done: Callable[[Any], None]
    """Runs here with that message (None when the child died or was stopped)."""


@dataclass
class _Pool:
    """Forked children, at most `workers` at a time, none started after `deadline` (wall time).
    A child writes its message as one line, whole (`_parsed`)."""

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
                task.done(_parsed(task.reply, b"".join(chunks)))

    def _late(self) -> bool:
        self.out_of_time = self.out_of_time or (self.deadline is not None and time.time() >= self.deadline)
        return self.out_of_time

    def _start(self, task: _Task) -> None:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: run, report, and leave without unwinding into the parent's code
            try:
                os.close(read)
                signal.alarm(RUN_SECONDS)  # a run that hangs is stopped, and comes back empty
                message = task.work()
                signal.alarm(0)  # what it writes from here is written whole
                with os.fdopen(write, "w") as out:
                    out.write(codec.dumps(message, FORMAT) + "\n")
            except Exception:  # comes back empty, as a run that died
                traceback.print_exc()
            finally:
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


def _parsed(reply: type, text: bytes) -> Any:
    """The `reply` message a child wrote, or None when it wrote none whole (it died, or its alarm
    went off: a message is whole when its line ends). A whole line of another shape is a `WireError`."""
    if not text.endswith(b"\n"):
        return None
    return codec.loads(reply, text.decode(), FORMAT)


def chunks(tests: list[str], durations: dict[str, float]) -> list[list[str]]:
    """`tests` (in order) in rounds of doubling measured time, from `FIRST_ROUND_SECONDS` (and at
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


def _calls_of(run: RunReport, test: str) -> tuple[Call, ...]:
    """`test`'s calls in `run`: a test without an entry made no call."""
    return run.calls[test] if test in run.calls else ()


_DEAD_RUN = RunReport(exit_code=NO_EXIT, tests={}, calls={}, found=None)
"""What an original's run that died or was stopped counts as: no test ran in it."""


@dataclass
class _Progress:
    """What the probe knows of one survivor so far (`status` None: still running)."""

    excluded: dict[str, str]
    """Its group's, shared: filled in round by round."""
    tests: int
    status: Status | None = None
    found: Found | None = None
    calls_seen: bool = False
    suggestion: Suggestion | None = None
    verifying: bool = False
    """A suggestion of it is being verified: a budget that ends first leaves it unfinished."""

    def result(self) -> SurvivorResult:
        """As the gate reads it: still running when the probe ended is not reached."""
        return SurvivorResult(status=self.status or Status.BUDGET, excluded=dict(self.excluded), tests=self.tests,
                              why=None, found=self.found, calls_seen=self.calls_seen, suggestion=self.suggestion,
                              unfinished=self.verifying)


class _Group:
    """The survivors of one function with the same tests, round by round of its tests (`chunks`):
    the original's two runs of a round, then each mutant that showed no difference yet."""

    def __init__(self, probe: Probe, spec: ProbeGroup) -> None:
        self.probe, self.module, self.short = probe, spec.module, spec.short
        self.tests, self.mutants = list(spec.tests), list(spec.mutants)
        self.rounds = chunks(self.tests, spec.durations)
        self.originals: dict[int, list[RunReport]] = {}
        self.waiting: dict[int, list[str]] = {}
        self.excluded: dict[str, str] = {}
        self.calls_seen = False

    def start(self) -> None:
        for name in self.mutants:
            self.probe.found[name] = _Progress(excluded=self.excluded, tests=len(self.tests))
        self._need(0, self.mutants)

    def _need(self, index: int, names: list[str]) -> None:
        """`names` wait for round `index`: its original's runs start with the first to need them."""
        if index not in self.waiting:
            self.waiting[index], self.originals[index] = [], []
            for _ in range(2):
                self.probe.pool.submit(_Task(lambda: self._run("", self.rounds[index]), RunReport,
                                             lambda run: self._original_done(index, run)), first=index > 0)
        self.waiting[index] += names
        if len(self.originals[index]) == 2:
            self._mutants_of(index, names)

    def _run(self, mutant: str, tests: list[str], compare: Compare | None = None) -> RunReport:
        recorder = Recorder()
        # the original's entry, and the mutant's that this run tests (a group's mutants share a table)
        plugin = _Plugin(recorder, (self.module, mutant.rpartition(".")[2] or self.short), compare)
        code = _pytest(self.probe.args, _scenario(mutant, tests), [plugin])
        return RunReport(exit_code=code, tests=plugin.tests, calls={t: recorder.observed(t) for t in recorder.calls},
                         found=plugin.found)

    def _original_done(self, index: int, run: RunReport | None) -> None:
        self.originals[index].append(run or _DEAD_RUN)
        if len(self.originals[index]) == 2:
            self.excluded.update(self._excluded(index))
            self.calls_seen = self.calls_seen or any(any(r.calls.values()) for r in self.originals[index])
            self._mutants_of(index, self.waiting[index])

    def _mutants_of(self, index: int, names: list[str]) -> None:
        for name in names:
            self._mutant_round(index, name, set(), None)

    def _mutant_round(self, index: int, name: str, unstable: set[tuple[str, str]], seen: Found | None) -> None:
        """One run of the mutant over round `index`, stopping at the first difference not in
        `unstable`; `seen` is the one an earlier run of it found, which this run must find again."""
        observable = [t for t in self.rounds[index] if t not in self.excluded]
        if not observable:
            self._no_difference(index, name)
            return
        self.probe.pool.submit(_Task(lambda: self._run(name, observable, self._compare_in(index, unstable)), RunReport,
                                     lambda run: self._mutant_done(index, name, run, unstable, seen)), first=True)

    def _excluded(self, index: int) -> dict[str, str]:
        """The tests of a round that cannot be compared, with why: they failed (or were skipped, or
        not run) on the original under observation, or a call of theirs could not be recorded."""
        excluded = {}
        for test in self.rounds[index]:
            for run in self.originals[index]:
                if test not in run.tests:
                    why: str | None = ("did not run on the original under the probe (its run ended with exit "
                                       f"{run.exit_code})")
                elif not run.tests[test].passed:
                    why = f"{run.tests[test].message} on the original under the probe"
                else:
                    why = observation.unobserved(_calls_of(run, test))
                if why is not None:
                    excluded[test] = why
                    break
        return excluded

    def _compare_in(self, index: int, unstable: set[tuple[str, str]]) -> Compare:
        def compare(test: str, calls: tuple[Call, ...]) -> Found | None:
            first, again = (_calls_of(run, test) for run in self.originals[index])
            if observation.unobserved(calls) is not None:
                return None
            found = [d for d in observation.differences(first, calls, again) if (test, d.what) not in unstable]
            if not found:
                return None
            # the first names the difference; any of them may give the suggestion
            return Found(test=test, first=found[0], others=tuple(found[1:MORE_DIFFERENCES + 1]), where=None)
        return compare

    def _mutant_done(self, index: int, name: str, run: RunReport | None, unstable: set[tuple[str, str]],
                     seen: Found | None) -> None:
        """A difference in what the call left behind counts once a second run of the mutant shows it
        too, as the original's two runs agree: what a thread's timing changed from one run to the
        next is not the mutant's doing. What the call itself returned or raised needs no second run."""
        progress = self.probe.found[name]
        if run is None:  # the machine's doing, maybe (a loaded CI machine): not cached, tried again next run
            progress.status = Status.DIED
            return
        self.calls_seen = self.calls_seen or any(run.calls.values())
        found = run.found
        if found is None and seen is None:
            self._no_difference(index, name)
            return
        key = None if found is None else (found.test, found.first.what)
        settled = seen is None and found is not None and observation.of_the_call_itself(found.first)
        if not settled and (seen is None or key != (seen.test, seen.first.what)):
            if seen is not None:  # the two runs disagree: neither difference is the mutant's for sure
                unstable = unstable | {(seen.test, seen.first.what)} | ({key} if key else set())
                found = None
            if len(unstable) > MOST_UNSTABLE:
                self._no_difference(index, name)
            else:
                self._mutant_round(index, name, unstable, found)
            return
        assert found is not None  # settled, or the same as `seen`
        progress.status, progress.found, progress.calls_seen = Status.DONE, found, True
        self.probe.verify(name, found, progress)

    def _no_difference(self, index: int, name: str) -> None:
        if index + 1 < len(self.rounds):
            self._need(index + 1, [name])
            return
        progress = self.probe.found[name]
        observable = [t for t in self.tests if t not in self.excluded]
        progress.status = Status.DONE if observable else Status.NOT_OBSERVED
        progress.found, progress.calls_seen = None, self.calls_seen


class Probe:
    def __init__(self, spec: ProbeSpec) -> None:
        self.args = ["-p", "no:cacheprovider", "-q", "--rootdir=.", *spec.pytest_args]
        self.pool = _Pool(max(1, spec.workers), spec.deadline)
        self.groups = [_Group(self, g) for g in spec.groups]
        self.found: dict[str, _Progress] = {}

    def run(self) -> ProbeResults:
        all_tests = sorted({t for g in self.groups for t in g.tests})
        # import the code and the tests once (torch among them); each run then forks from here, so
        # that no run sees what an earlier one left behind (a cache, a counter, a patched global)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            pytest.main([*self.args, "--collect-only", *all_tests])
        for group in self.groups:
            group.start()
        self.pool.run()
        # a survivor still running is not reached; one explained whose suggestion's verification was
        # cut short is unfinished: explained again next time
        return ProbeResults(survivors={name: self.found[name].result() if name in self.found
                                       else not_reached(len(group.tests))
                                       for group in self.groups for name in group.mutants})

    def verify(self, name: str, found: Found, progress: _Progress) -> None:
        """Try each suggested assertion until one passes on the original and fails on the mutant;
        `progress.suggestion` is that one. The test is found where its code was defined (a test
        inherited from a base class in another module is changed there)."""
        test = found.test
        file, line = (found.where.file, found.where.line) if found.where is not None else (test.split("::", 1)[0], None)
        try:
            source = Path(file).read_text()
        except (OSError, UnicodeDecodeError):
            return
        tried = [c for d in (found.first, *found.others) for c in candidates(test, source, d, file=file, line=line)]
        self._try(name, tried[:MOST_TRIES], source, progress)

    def _try(self, name: str, tried: list[Suggestion], source: str, progress: _Progress) -> None:
        # until the last candidate is judged: a budget that ends first leaves the survivor unfinished
        progress.verifying = bool(tried)
        if not tried:
            return
        suggestion, rest = tried[0], tried[1:]
        changed = suggestion.applied_to(source)
        verdicts: dict[str, Verdict | None] = {}

        def ran(which: str, outcome: ChangedRun | None) -> None:
            verdicts[which] = verdict_of(outcome.exit_code) if outcome is not None else None
            if len(verdicts) < 2:
                return
            if verdicts["original"] is Verdict.PASSED and verdicts["mutant"] is Verdict.FAILED:
                progress.suggestion, progress.verifying = suggestion, False
            else:
                self._try(name, rest, source, progress)

        for which, mutant in (("original", ""), ("mutant", name)):
            self.pool.submit(_Task(lambda mutant=mutant: self._run_changed(suggestion, changed, mutant), ChangedRun,
                                   lambda outcome, which=which: ran(which, outcome)), first=True)

    def _run_changed(self, suggestion: Suggestion, changed: str, mutant: str) -> ChangedRun:
        """In the forked child: the test's module (and the test's own, when it inherits the test)
        executed again from `changed` in memory, then the test run. Nothing is written to disk."""
        test_file = suggestion.test.split("::", 1)[0]
        _reexecute(suggestion.file, changed)
        if Path(test_file).resolve() != Path(suggestion.file).resolve():
            _reexecute(test_file, Path(test_file).read_text())
        return ChangedRun(exit_code=_pytest(self.args, _scenario(mutant, [suggestion.test]), []))


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


def probe(spec: ProbeSpec) -> ProbeResults:
    from gate.mutmut_adapter.runner import _import_from_mutants

    os.environ["PY_IGNORE_IMPORTMISMATCH"] = "1"
    mutmut.setup_source_paths()
    _import_from_mutants(list(spec.import_roots))
    os.chdir(MUTANTS_DIR)
    return Probe(spec).run()


if __name__ == "__main__":
    spec_path, out_path = sys.argv[1:3]
    results = probe(codec.read(ProbeSpec, Path(spec_path), FORMAT))
    codec.write(Path(out_path), results, FORMAT)
