"""What a mutant's test run says, and what it does not: only a failing test is a kill, every job
comes back with an outcome, and a selection pytest cannot make is named in one line."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gate.errors import ConfigError, InfrastructureError, RedSuiteError
from gate.mutmut_adapter.run_state import RunState, classify
from gate.mutmut_adapter.runner import selection_error, stable_selection
from gate.result import Mutant, MutantStatus, Region, RegionKind
from gate.scenario import Kind, Scenario, Verdict
from gate.steps import mutants
from gate.steps.measurement import Measurement
from gate.steps.cache import ResultCache
from gate.steps.plan import Job
from gate.steps.selection import Candidate
from gate.wire import driver as wire
from gate.wire.driver import MutantJob, Outcome, WorkerResult


def test_only_a_failing_test_is_a_kill():
    assert classify(1, WorkerResult(exit_code=1, killed_by="t.py::test_a", seconds=0.5, detail="boom"), 1.0, 10.0) == (
        MutantStatus.KILLED, "t.py::test_a", "boom")
    assert classify(1, WorkerResult(exit_code=1, killed_by=None, seconds=0.5, detail=""), 1.0, 10.0) == (
        MutantStatus.KILLED, "pytest exit 1", "")
    assert classify(0, WorkerResult(exit_code=0, killed_by=None, seconds=0.5, detail=""), 1.0, 10.0) == (
        MutantStatus.SURVIVED, None, "")
    for code, what in [(2, "interrupted"), (3, "internal error"), (4, "usage error"), (5, "no tests collected"),
                       (8, "an unknown exit code")]:
        written = WorkerResult(exit_code=code, killed_by=None, seconds=0.5, detail="why")
        status, killed_by, detail = classify(0, written, 1.0, 10.0)
        assert (status, killed_by, detail) == (MutantStatus.ERROR, None, f"pytest exit {code} ({what}): why")


def test_test_ids_that_changed_fall_back_to_their_function_then_their_file():
    collected = frozenset({"t.py::test_a[2026-11-27T10:00:00]", "t.py::test_b", "u.py::TestC::test_d[1]"})
    measured_ids = ["t.py::test_a[2026-11-26T09:00:00]", "t.py::test_b", "u.py::TestC::test_gone",
                    "t.py::test_a[2026-11-26T09:00:01]"]
    assert stable_selection(measured_ids, collected) == ["t.py::test_a", "t.py::test_b", "u.py"]
    assert stable_selection(measured_ids, None) == measured_ids  # no warm-up collection: as given


def test_the_suites_own_arguments_pass_unchanged():
    suite = ["tests/errors", "-p", "no:randomly", "-p", "no:xdist", "-m", "not slow", "-k", "not slow"]
    assert stable_selection(suite, frozenset({"tests/errors/test_x.py::test_y"})) == suite


def test_a_timeout_after_the_tests_were_widened_is_no_verdict(tmp_path):
    job = MutantJob("m.x_f__mutmut_1", ("t.py::test_a[1]",), 2, 0.1)
    run = RunState(tmp_path, [job], check_cpu_limit=2)
    run.send(job.scenario)
    run.ordered_tests(run.jobs["m.x_f__mutmut_1"])
    run.started["m.x_f__mutmut_1"] -= 5  # it ran past its 1 s wall limit
    wire.write_widened(tmp_path, "m.x_f__mutmut_1", wire.Widened(("t.py",)))
    run.collect(SimpleNamespace(mutant_name="m.x_f__mutmut_1", exit_code=-9))
    [outcome] = run.unchecked
    assert outcome.status is MutantStatus.ERROR
    assert outcome.detail.endswith("running t.py in place of test ids that changed since the measurement")


def test_a_timeout_counts_only_after_a_second_run_alone_with_twice_the_limit(tmp_path):
    job = MutantJob("m.x_f__mutmut_1", ("t.py::test_a",), 2, 0.1)
    run = RunState(tmp_path, [job], check_cpu_limit=2)
    run.send(job.scenario)
    run.ordered_tests(job)
    run.started[job.name] -= 5
    run.collect(SimpleNamespace(mutant_name=job.name, exit_code=-9))
    [retry] = run.retries
    assert retry.cpu_limit == 4 and not run.unchecked
    run.send(retry.scenario)
    run.ordered_tests(retry)
    run.started[job.name] -= 5
    run.collect(SimpleNamespace(mutant_name=job.name, exit_code=-9))
    [outcome] = run.unchecked
    assert outcome.status is MutantStatus.TIMEOUT
    assert outcome.detail == ("timed out once (stopped after 5.0s (limit 1.0s)), then alone with twice the limit, "
                              "stopped after 5.0s (limit 2.0s)")


def test_the_checks_are_scenarios_that_hold_the_outcomes_until_they_pass(tmp_path, capsys):
    job = MutantJob("m.x_f__mutmut_1", ("t.py::test_a", "t.py::test_b"), 10, 0.1)
    run = RunState(tmp_path, [job], check_cpu_limit=6)
    forced = run.forced_failure(["t.py"])
    assert run.send(forced) == "fail" and forced.expected is Verdict.FAILED
    assert run.send(job.scenario) == job.name
    run.ordered_tests(job)
    wire.write_result(tmp_path, job.name, WorkerResult(exit_code=1, killed_by="t.py::test_b", seconds=0.1, detail=""))
    run.collect(SimpleNamespace(mutant_name=job.name, exit_code=1))
    [check] = run.checks_to_submit
    assert (check.kind, check.tests, check.cpu_limit, check.expected) == (
        Kind.CLEAN_RUN, ("t.py::test_b",), 6, Verdict.PASSED)
    assert run.send(check) == "gate-clean-run-1"
    run.collect(SimpleNamespace(mutant_name="gate-clean-run-1", exit_code=0))
    assert run.unchecked and not capsys.readouterr().out  # held until the forced failure failed
    run.collect(SimpleNamespace(mutant_name="fail", exit_code=1))
    [line] = capsys.readouterr().out.splitlines()
    outcome = wire.parse(line, wire.RunResult)
    assert outcome == Outcome(job.name, MutantStatus.KILLED, "t.py::test_b", outcome.seconds, "")
    with pytest.raises(InfrastructureError, match="returned a result for gate-clean-run-2, which it was not sent"):
        run.collect(SimpleNamespace(mutant_name="gate-clean-run-2", exit_code=0))


@pytest.mark.parametrize("exit_code, message", [
    (0, "did not fail the tests"), (2, "ended with exit 2 instead of failing tests"),
    (-9, "ended with exit -9 instead of failing tests")])
def test_a_forced_failure_must_fail_its_tests(exit_code, message, tmp_path):
    run = RunState(tmp_path, [], check_cpu_limit=2)
    run.send(run.forced_failure(["t.py"]))
    with pytest.raises(InfrastructureError, match=message):
        run.collect(SimpleNamespace(mutant_name="fail", exit_code=exit_code))


def test_a_killing_test_that_fails_on_the_unmutated_copy_is_a_red_suite(tmp_path):
    run = RunState(tmp_path, [], check_cpu_limit=2)
    check = Scenario(Kind.CLEAN_RUN, ("t.py::test_a",), 2, key="1")
    run.send(check)
    wire.write_result(tmp_path, "gate-clean-run-1", WorkerResult(exit_code=1, killed_by="t.py::test_a", seconds=0.1,
                                                                 detail=""))
    run.waiting[check.tests] = []
    with pytest.raises(RedSuiteError, match="under mutmut's trampolines: t.py::test_a"):
        run.collect(SimpleNamespace(mutant_name="gate-clean-run-1", exit_code=1))


def test_a_selection_pytest_cannot_make_is_named_in_one_line():
    stderr = "ERROR: not found: /w/t.py::test_a\n(no match in any of [<Module t.py>])\n\n"
    assert selection_error(stderr, ["t.py::test_a"], None) == "not found: /w/t.py::test_a"
    assert selection_error("", ["t.py", "t.py::test_x"], frozenset({"t.py::test_y"})) == "not found: t.py::test_x"


def _job(name: str) -> Job:
    region = Region(file="m.py", start=3, end=4, kind=RegionKind.EXCEPT, function="f", label="except E",
                    entry_line=4, unit="f", unit_decorators=())
    mutant = Mutant(name=name, file="m.py", unit="f", operator="swallow", origin="gate", start=4, end=4,
                    original="x", replacement="pass", diff="")
    return Job(MutantJob(name, ("t.py::test_a",), 10, 0.1), Candidate(mutant, region, ("t.py::test_a",), None), "key")


class _Run:
    """mutmut's side of a run, answering with the outcomes it is given."""

    def __init__(self, *answers: str) -> None:
        self.answers = answers

    def test(self, jobs, *, check_cpu_limit, on_outcome) -> None:
        for name in self.answers:
            on_outcome(Outcome(name, MutantStatus.KILLED, "t.py::test_a", 0.1, ""))


def _run_jobs(run: _Run, jobs: list[Job], tmp_path) -> dict:
    settings = SimpleNamespace(timeout_constant=1.0, timeout_multiplier=2.0)
    coverage = SimpleNamespace(measurement=Measurement(durations={"t.py::test_a": 0.1}, seconds=0.1))
    outcomes: dict = {}
    progress = SimpleNamespace(mutant=lambda *args: None)
    mutants.run_jobs(run, jobs, settings, coverage, ResultCache(tmp_path / "r.json"), outcomes, progress)
    return outcomes


def test_every_job_comes_back_with_an_outcome(tmp_path):
    jobs = [_job("m.x_f__mutmut_1"), _job("m.x_f__mutmut_2")]
    assert set(_run_jobs(_Run("m.x_f__mutmut_1", "m.x_f__mutmut_2"), jobs, tmp_path)) == {
        "m.x_f__mutmut_1", "m.x_f__mutmut_2"}
    with pytest.raises(InfrastructureError, match=r"no outcome came back from mutmut for 1 of the 2 mutants sent "
                                                  r"\(first: m.x_f__mutmut_2\)"):
        _run_jobs(_Run("m.x_f__mutmut_1"), jobs, tmp_path)
    with pytest.raises(InfrastructureError, match="outcome for m.x_f__mutmut_9, which the gate did not send it"):
        _run_jobs(_Run("m.x_f__mutmut_9"), jobs, tmp_path)
    with pytest.raises(InfrastructureError, match="m.x_f__mutmut_1, which the gate did not send it or had an "
                                                  "outcome for already"):
        _run_jobs(_Run("m.x_f__mutmut_1", "m.x_f__mutmut_1"), jobs, tmp_path)


@pytest.mark.parametrize("error", [InfrastructureError("mutmut crashed"), RedSuiteError("the suite fails"),
                                   ConfigError("GATE_LEVERS_OFF names unknown levers x")])
def test_an_error_in_the_driver_reaches_the_gate_as_its_own_class(error, capsys):
    wire.emit_error(error)
    event = wire.parse(capsys.readouterr().out.strip(), wire.RunResult)
    assert isinstance(event, wire.ErrorReport)
    with pytest.raises(type(error)) as raised:
        wire.raise_error(event)
    assert type(raised.value) is type(error) and str(raised.value) == str(error)
    assert wire.parse("pytest's own output", wire.RunResult) is None
