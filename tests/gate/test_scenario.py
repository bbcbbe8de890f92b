"""Every pytest run the gate makes is a `Scenario`, and its exit is read once (`verdict_of`),
against pytest's own exit codes; a worker stopped for its time is a timeout, one killed otherwise
a crash."""

from __future__ import annotations

import signal
from types import SimpleNamespace

import pytest

from gate.mutmut_adapter import naming
from gate.mutmut_adapter.run_state import classify
from gate.result import MutantStatus
from gate.scenario import (CPU_PER_WALL_SECOND, Kind, PytestExit, Scenario, Verdict, cpu_limit, timed_out,
                           verdict_of, wall_limit)
from gate.steps import plan
from gate.wire.driver import MutantJob, WorkerResult


def test_pytest_exit_is_pytests_exit_code_member_by_member():
    assert [(m.name, m.value) for m in PytestExit] == [(m.name, m.value) for m in pytest.ExitCode]


@pytest.mark.parametrize("code, verdict", [
    (PytestExit.OK, Verdict.PASSED), (PytestExit.TESTS_FAILED, Verdict.FAILED),
    (PytestExit.INTERRUPTED, Verdict.BROKEN), (PytestExit.INTERNAL_ERROR, Verdict.BROKEN),
    (PytestExit.USAGE_ERROR, Verdict.BROKEN), (PytestExit.NO_TESTS_COLLECTED, Verdict.BROKEN),
    (PytestExit.MAX_WARNINGS_ERROR, Verdict.BROKEN),
])
def test_only_a_failing_test_says_a_test_noticed_something(code, verdict):
    assert verdict_of(code) is verdict
    assert verdict_of(int(code)) is verdict  # the bare number a worker's exit status is
    assert verdict_of(pytest.ExitCode(int(code))) is verdict


def test_every_member_of_pytest_exit_has_a_verdict_and_words():
    assert {verdict_of(code) for code in PytestExit} == set(Verdict)
    assert [PytestExit.describe(code) for code in PytestExit] == [
        "ok", "tests failed", "interrupted", "internal error", "usage error", "no tests collected",
        "max warnings error"]


@pytest.mark.parametrize("code", [7, 99, 255, -1, 128 + signal.SIGXCPU])
def test_an_unknown_exit_code_is_a_broken_run(code):
    assert verdict_of(code) is Verdict.BROKEN
    assert PytestExit.describe(code) == "an unknown exit code"
    status, killed_by, detail = classify(0, WorkerResult(exit_code=code, killed_by=None, seconds=0.1, detail=""),
                                         0.1, 5.0)
    assert (status, killed_by, detail) == (MutantStatus.ERROR, None, f"pytest exit {code} (an unknown exit code)")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV, signal.SIGTERM])
def test_a_signal_killed_worker_is_a_broken_run_and_a_crash(sig):
    assert verdict_of(-sig) is Verdict.BROKEN
    assert classify(-sig, None, 0.5, 10.0) == (MutantStatus.CRASHED, None, f"the worker killed by {sig.name}")


def test_a_worker_that_exits_before_pytest_finished_crashed():
    assert classify(3, None, 0.5, 10.0) == (MutantStatus.CRASHED, None, "the worker exited with 3 before pytest finished")


@pytest.mark.parametrize("exit_code", [-signal.SIGXCPU, signal.SIGXCPU, 128 + signal.SIGXCPU])
def test_a_worker_over_its_cpu_limit_timed_out(exit_code):
    assert timed_out(exit_code, 0.1, 10.0)
    assert classify(exit_code, None, 0.1, 10.0) == (MutantStatus.TIMEOUT, None, "stopped after 0.1s (limit 10.0s)")


def test_a_worker_killed_past_its_wall_limit_timed_out_and_before_it_crashed():
    assert timed_out(-signal.SIGKILL, 5.0, 5.0) and not timed_out(-signal.SIGKILL, 4.9, 5.0)
    assert classify(-signal.SIGKILL, None, 6.0, 5.0)[0] is MutantStatus.TIMEOUT
    assert classify(-signal.SIGKILL, None, 1.0, 5.0)[0] is MutantStatus.CRASHED
    # a worker that wrote its result finished, whatever its exit says
    assert classify(-signal.SIGKILL, WorkerResult(0, None, 6.0, ""), 6.0, 5.0)[0] is MutantStatus.SURVIVED


def test_the_wall_limit_is_the_cpu_limit_over_mutmuts_factor():
    assert CPU_PER_WALL_SECOND == 2
    assert wall_limit(10) == 5.0 and wall_limit(3) == 1.5
    assert cpu_limit(2.5) == 5 and cpu_limit(0.1) == 1  # at least one CPU second
    assert wall_limit(cpu_limit(4.0)) == 4.0


def test_a_jobs_cpu_limit_allows_its_measured_time_on_the_wall_clock():
    settings = SimpleNamespace(timeout_constant=1.0, timeout_multiplier=2.0)
    limit = plan.cpu_limit(0.5, settings)
    assert limit == 6 and wall_limit(limit) == (0.5 + 1.0) * 2.0


def test_a_mutant_job_is_a_mutant_scenario():
    job = MutantJob("m.x_f__mutmut_1", ("t.py::test_a",), 8, 0.5, group="m.py:f")
    assert job.scenario == Scenario(Kind.MUTANT, ("t.py::test_a",), 8, mutant="m.x_f__mutmut_1")
    assert job.scenario.expected is None  # its verdict is the finding


@pytest.mark.parametrize("scenario, name, expected", [
    (Scenario(Kind.FORCED_FAILURE, ("t.py",), 4), "fail", Verdict.FAILED),
    (Scenario(Kind.CLEAN_RUN, ("t.py::test_a",), 4, key="3"), "gate-clean-run-3", Verdict.PASSED),
    (Scenario(Kind.MUTANT, ("t.py::test_a",), 4, mutant="m.x_f__mutmut_1"), "m.x_f__mutmut_1", None),
    (Scenario(Kind.PROBE_ORIGINAL, ("t.py::test_a",), 4), "", None),
    (Scenario(Kind.PROBE_MUTANT, ("t.py::test_a",), 4, mutant="m.x_f__mutmut_1"), "m.x_f__mutmut_1", None),
])
def test_each_scenario_has_the_name_mutmuts_trampolines_see(scenario, name, expected):
    assert naming.under_test(scenario) == name
    assert scenario.expected is expected


def test_the_scenarios_of_one_run_have_labels_of_their_own():
    scenarios = [Scenario(Kind.FORCED_FAILURE, ("t.py",), 4), Scenario(Kind.CLEAN_RUN, ("t.py::a",), 4, key="1"),
                 Scenario(Kind.CLEAN_RUN, ("t.py::b",), 4, key="2"),
                 Scenario(Kind.MUTANT, ("t.py::a",), 4, mutant="m.x_f__mutmut_1")]
    assert len({s.label for s in scenarios}) == len(scenarios)
