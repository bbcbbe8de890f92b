"""The driver's bookkeeping while mutants run (`RunState`), and what a worker's exit says about its
mutant (`classify`). Runs in the driver process.

Every run the fork server makes is a `gate.scenario.Scenario`: the forced failure, the clean runs
of the killing tests, the mutants. mutmut knows each by the name its trampolines see
(`naming.under_test`); `RunState` maps that name back to the scenario whose result it is."""

from __future__ import annotations

import dataclasses
import signal
import time
from pathlib import Path
from typing import Any

from gate.errors import InfrastructureError, RedSuiteError
from gate.levers import levers_off
from gate.mutmut_adapter.naming import under_test
from gate.result import MutantStatus
from gate.scenario import Kind, PytestExit, Scenario, Verdict, timed_out, verdict_of, wall_limit
from gate.wire.driver import Event, MutantJob, Outcome, WorkerResult, emit, read_result, read_widened


RETRY_FACTOR = 2
"""A mutant that timed out runs once more, alone, with this many times its limit."""


class RunState:
    """The driver's bookkeeping while mutants run: the scenarios sent, the checks, the outcomes held
    until the checks they depend on passed, and which test killed each function's mutants so far."""

    def __init__(self, results_dir: Path, jobs: list[MutantJob], check_cpu_limit: int) -> None:
        self.results_dir = results_dir
        self.jobs = {j.name: j for j in jobs}
        self.check_cpu_limit = check_cpu_limit
        self.sent: dict[str, Scenario] = {}
        """mutmut's name for each scenario sent to the fork server -> the scenario."""
        self.started: dict[str, float] = {}
        self.killers: dict[str, dict[str, int]] = {}
        self.forced_failure_checked = False
        self.unchecked: list[Outcome] = []
        """Outcomes that arrived before the forced failure was seen to fail."""
        self.verified: set[tuple[str, ...]] = set()
        self.waiting: dict[tuple[str, ...], list[Outcome]] = {}
        self.clean_runs: dict[tuple[str, ...], Scenario] = {}
        self.checks_to_submit: list[Scenario] = []
        self.clean_checks = 0
        self.retries: list[MutantJob] = []
        """Mutants that timed out once, to run again alone with twice the limit (a loaded machine,
        or a mutant that only makes the code slower, times out without being a kill)."""
        self.first_timeouts: dict[str, str] = {}

    def forced_failure(self, tests: list[str]) -> Scenario:
        """The check that every mutated function, made to raise, fails `tests`."""
        return Scenario(Kind.FORCED_FAILURE, tuple(tests), self.check_cpu_limit)

    def send(self, scenario: Scenario) -> str:
        """mutmut's name for `scenario`, which is about to be submitted under it."""
        name = under_test(scenario)
        self.sent[name] = scenario
        return name

    def ordered_tests(self, job: MutantJob) -> list[str]:
        """This mutant's tests: its own last killer, then those that killed its function's other
        mutants in this run, then the gate's order."""
        self.started[job.name] = time.monotonic()
        if "killer-first" in levers_off():
            return list(job.tests)
        kills = self.killers.get(job.group, {})
        return sorted(job.tests, key=lambda t: (t != job.first, -kills.get(t, 0)))  # stable sort

    def collect(self, result: Any) -> None:
        """One of mutmut's `MutantResult`s (its name and the worker's exit code)."""
        name = result.mutant_name
        if name not in self.sent:
            raise InfrastructureError(f"mutmut's runner returned a result for {name}, which it was not sent")
        scenario = self.sent[name]
        if scenario.kind is Kind.FORCED_FAILURE:
            self._forced_failure(result.exit_code)
        elif scenario.kind is Kind.CLEAN_RUN:
            self._clean_check(name, scenario, result.exit_code)
        else:
            self._mutant(name, result.exit_code)

    def _mutant(self, name: str, exit_code: int) -> None:
        job = self.jobs[name]
        seconds = time.monotonic() - self.started[name]
        status, killed_by, detail = classify(exit_code, read_result(self.results_dir, name), seconds,
                                             wall_limit(job.cpu_limit))
        widened = read_widened(self.results_dir, name)
        if status is MutantStatus.TIMEOUT and widened is not None:
            # its test ids had changed, so more tests ran than its limit was set for: no verdict
            status, detail = MutantStatus.ERROR, (f"{detail}, running {widened} in place of test ids "
                                                  "that changed since the measurement")
        if status is MutantStatus.TIMEOUT and name not in self.first_timeouts:
            self.first_timeouts[name] = detail
            self.jobs[name] = dataclasses.replace(job, cpu_limit=job.cpu_limit * RETRY_FACTOR)
            self.retries.append(self.jobs[name])
            return
        if name in self.first_timeouts:
            again = f"then alone with twice the limit, {detail}" if status is MutantStatus.TIMEOUT else (
                f"then alone with twice the limit it finished{': ' + detail if detail else ''}")
            detail = f"timed out once ({self.first_timeouts[name]}), {again}"
        outcome = Outcome(name=name, status=status, killed_by=killed_by, seconds=round(seconds, 3), detail=detail)
        if status is not MutantStatus.KILLED:
            self._release([outcome])
            return
        group = self.killers.setdefault(job.group, {})
        group[killed_by] = group.get(killed_by, 0) + 1
        # the killing test must pass on the unmutated copy; without one to name, all its tests must
        selection = (killed_by,) if killed_by and "::" in killed_by else job.tests
        if selection in self.verified:
            self._release([outcome])
            return
        if selection not in self.waiting:
            self.waiting[selection] = []
            check = Scenario(Kind.CLEAN_RUN, selection, self.check_cpu_limit, key=str(len(self.clean_runs) + 1))
            self.clean_runs[selection] = check
            self.checks_to_submit.append(check)
        self.waiting[selection].append(outcome)

    def _clean_check(self, name: str, scenario: Scenario, exit_code: int) -> None:
        selection = scenario.tests
        self.clean_checks += 1
        if verdict_of(exit_code) is not scenario.expected:
            written = read_result(self.results_dir, name)
            failed = (written.killed_by if written is not None else None) or ", ".join(selection)
            raise RedSuiteError(f"the suite fails on unmutated code under mutmut's trampolines: {failed}")
        self.verified.add(selection)
        self._release(self.waiting.pop(selection))

    def _forced_failure(self, exit_code: int) -> None:
        verdict = verdict_of(exit_code)
        if verdict is Verdict.PASSED:
            raise InfrastructureError("a forced failure of every mutated function did not fail the tests: no test calls "
                               "a guarded function, the tests do not import mutmut's mutated copy, or they "
                               "swallow every exception")
        if verdict is Verdict.BROKEN:  # anything but "tests failed" says nothing about the tests
            raise InfrastructureError(f"the forced-failure check ended with exit {exit_code} instead of failing tests")
        self.forced_failure_checked = True
        self._release(self.unchecked)
        self.unchecked = []

    def _release(self, outcomes: list[Outcome]) -> None:
        if not self.forced_failure_checked:
            self.unchecked.extend(outcomes)
            return
        for outcome in outcomes:
            emit(Event.OUTCOME, outcome)


def classify(exit_code: int, written: WorkerResult | None, seconds: float, wall: float
             ) -> tuple[MutantStatus, str | None, str]:
    """mutmut's raw worker exit code (plus the result file its worker wrote, if it wrote one) -> a
    MutantStatus, the killing test and what to say about it."""
    if written is None:  # the worker died before pytest finished
        if timed_out(exit_code, seconds, wall):
            return MutantStatus.TIMEOUT, None, f"stopped after {seconds:.1f}s (limit {wall:.1f}s)"
        how = (f"killed by {signal.Signals(-exit_code).name}" if exit_code < 0 and -exit_code in
               signal.valid_signals() else f"exited with {exit_code} before pytest finished")
        return MutantStatus.CRASHED, None, f"the worker {how}"
    code = written.exit_code
    verdict = verdict_of(code)
    if verdict is Verdict.PASSED:
        return MutantStatus.SURVIVED, None, ""
    if verdict is Verdict.FAILED:  # a test failed: the only exit that says the tests noticed the mutant
        return MutantStatus.KILLED, written.killed_by or f"pytest exit {int(PytestExit.TESTS_FAILED)}", written.detail
    # interrupted (collection errors too), an internal error, a usage error (a node id not found),
    # no tests: the run itself failed, and says nothing about the mutant
    detail = written.detail
    return MutantStatus.ERROR, None, f"pytest exit {code} ({PytestExit.describe(code)})" + (f": {detail}" if detail else "")
