"""The driver's bookkeeping while mutants run (`RunState`), and what a worker's exit says about its
mutant (`classify`). Runs in the driver process."""

from __future__ import annotations

import dataclasses
import json
import signal
import time
from pathlib import Path
from typing import Any

from gate.errors import InfrastructureError, RedBaselineError
from gate.levers import levers_off
from gate.mutmut_adapter.internals import FORCED_FAIL
from gate.mutmut_adapter.protocol import MutantJob, emit
from gate.result import MutantStatus

CLEAN_RUN = "gate-clean-run"
"""The name of a check that a killing test passes on the unmutated copy."""


class RunState:
    """The driver's bookkeeping while mutants run: the checks, the outcomes held until the checks
    they depend on passed, and which test killed each function's mutants so far."""

    def __init__(self, results_dir: Path, jobs: list[MutantJob]) -> None:
        self.results_dir = results_dir
        self.jobs = {j.name: j for j in jobs}
        self.started: dict[str, float] = {}
        self.killers: dict[str, dict[str, int]] = {}
        self.forced_failure_checked = False
        self.unchecked: list[dict[str, Any]] = []
        """Outcomes that arrived before the forced failure was seen to fail."""
        self.verified: set[tuple[str, ...]] = set()
        self.waiting: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        self.check_names: dict[str, tuple[str, ...]] = {}
        self.checks_to_submit: list[tuple[str, tuple[str, ...]]] = []
        self.clean_checks = 0
        self.retries: list[MutantJob] = []
        """Mutants that timed out once, to run again alone with twice the limit (a loaded machine,
        or a mutant that only makes the code slower, times out without being a kill)."""
        self.first_timeouts: dict[str, str] = {}

    def ordered_tests(self, job: MutantJob) -> list[str]:
        """This mutant's tests: its own last killer, then those that killed its function's other
        mutants in this run, then the gate's order."""
        self.started[job.name] = time.monotonic()
        if "killer-first" in levers_off():
            return list(job.tests)
        kills = self.killers.get(job.group, {})
        return sorted(job.tests, key=lambda t: (t != job.first, -kills.get(t, 0)))  # stable sort

    def collect(self, result: Any) -> None:
        name = result.mutant_name
        if name == FORCED_FAIL:
            self._forced_failure(result.exit_code)
        elif name in self.check_names:
            self._clean_check(name, result.exit_code)
        else:
            self._mutant(name, result.exit_code)

    def _mutant(self, name: str, exit_code: int) -> None:
        job = self.jobs.get(name)
        if job is None:
            raise InfrastructureError(f"mutmut's runner returned a result for {name}, which it was not sent")
        seconds = time.monotonic() - self.started[name]
        status, killed_by, detail = classify(exit_code, _read_result(self.results_dir, name), seconds,
                                             job.cpu_limit / 2)
        widened = self.results_dir / f"{name}.widened"
        if status is MutantStatus.TIMEOUT and widened.exists():
            # its test ids had changed, so more tests ran than its limit was set for: no verdict
            status, detail = MutantStatus.ERROR, (f"{detail}, running {widened.read_text()} in place of test ids "
                                                  "that changed since the baseline")
        if status is MutantStatus.TIMEOUT and name not in self.first_timeouts:
            self.first_timeouts[name] = detail
            self.jobs[name] = dataclasses.replace(job, cpu_limit=job.cpu_limit * 2)
            self.retries.append(self.jobs[name])
            return
        if name in self.first_timeouts:
            again = f"then alone with twice the limit, {detail}" if status is MutantStatus.TIMEOUT else (
                f"then alone with twice the limit it finished{': ' + detail if detail else ''}")
            detail = f"timed out once ({self.first_timeouts[name]}), {again}"
        outcome = {"name": name, "status": status.value, "killed_by": killed_by, "seconds": round(seconds, 3),
                   "detail": detail}
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
            check = f"{CLEAN_RUN}-{len(self.check_names) + 1}"
            self.check_names[check] = selection
            self.checks_to_submit.append((check, selection))
        self.waiting[selection].append(outcome)

    def _clean_check(self, name: str, exit_code: int) -> None:
        selection = self.check_names[name]
        self.clean_checks += 1
        if exit_code != 0:
            failed = _read_result(self.results_dir, name).get("killed_by") or ", ".join(selection)
            raise RedBaselineError(f"the suite fails on unmutated code under mutmut's trampolines: {failed}")
        self.verified.add(selection)
        self._release(self.waiting.pop(selection))

    def _forced_failure(self, exit_code: int) -> None:
        if exit_code == 0:
            raise InfrastructureError("a forced failure of every mutated function did not fail the tests: no test calls "
                               "a guarded function, the tests do not import mutmut's mutated copy, or they "
                               "swallow every exception")
        if exit_code != 1:  # pytest's "tests failed"; anything else says nothing about the tests
            raise InfrastructureError(f"the forced-failure check ended with exit {exit_code} instead of failing tests")
        self.forced_failure_checked = True
        emit("checked")
        self._release(self.unchecked)
        self.unchecked = []

    def _release(self, outcomes: list[dict[str, Any]]) -> None:
        if not self.forced_failure_checked:
            self.unchecked.extend(outcomes)
            return
        for outcome in outcomes:
            emit("outcome", **outcome)


def _read_result(results_dir: Path, name: str) -> dict[str, Any]:
    try:
        return json.loads((results_dir / f"{name}.json").read_text())
    except (OSError, ValueError):
        return {}


_TIMEOUT_EXIT_CODES = {-signal.SIGXCPU, signal.SIGXCPU, 128 + signal.SIGXCPU}


def classify(exit_code: int, written: dict[str, Any], seconds: float, wall_limit: float
             ) -> tuple[MutantStatus, str | None, str]:
    """mutmut's raw worker exit code (plus the gate's result file) -> a MutantStatus."""
    if not written:  # the worker died before pytest finished
        if exit_code in _TIMEOUT_EXIT_CODES or (exit_code == -signal.SIGKILL and seconds >= wall_limit):
            return MutantStatus.TIMEOUT, None, f"stopped after {seconds:.1f}s (limit {wall_limit:.1f}s)"
        how = (f"killed by {signal.Signals(-exit_code).name}" if exit_code < 0 and -exit_code in
               signal.valid_signals() else f"exited with {exit_code} before pytest finished")
        return MutantStatus.CRASHED, None, f"the worker {how}"
    code = written["exit_code"]
    if code == 0:
        return MutantStatus.SURVIVED, None, ""
    if code == 1:  # a test failed: the only exit that says the tests noticed the mutant
        return MutantStatus.KILLED, written.get("killed_by") or "pytest exit 1", written.get("detail", "")
    # interrupted (collection errors too), an internal error, a usage error (a node id not found),
    # no tests: the run itself failed, and says nothing about the mutant
    what = PYTEST_EXITS.get(code, "an unknown exit code")
    detail = written.get("detail", "")
    return MutantStatus.ERROR, None, f"pytest exit {code} ({what})" + (f": {detail}" if detail else "")


PYTEST_EXITS = {2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests collected"}

