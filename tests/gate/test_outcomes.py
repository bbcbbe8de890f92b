"""What a mutant's test run says, and what it does not: only a failing test is a kill, every job
comes back with an outcome, and a selection pytest cannot make is named in one line."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gate.errors import ConfigError, InfrastructureError, RedBaselineError
from gate.mutmut_adapter import protocol
from gate.mutmut_adapter.protocol import MutantJob, RawOutcome
from gate.mutmut_adapter.run_state import RunState, classify
from gate.mutmut_adapter.runner import selection_error, stable_selection
from gate.result import Mutant, MutantStatus, Region, RegionKind
from gate.steps import mutants
from gate.steps.baseline import Baseline
from gate.steps.cache import ResultCache
from gate.steps.plan import Job
from gate.steps.selection import Candidate


def test_only_a_failing_test_is_a_kill():
    assert classify(1, {"exit_code": 1, "killed_by": "t.py::test_a", "detail": "boom"}, 1.0, 10.0) == (
        MutantStatus.KILLED, "t.py::test_a", "boom")
    for code, what in [(2, "interrupted"), (3, "internal error"), (4, "usage error"), (5, "no tests collected")]:
        status, killed_by, detail = classify(0, {"exit_code": code, "killed_by": None, "detail": "why"}, 1.0, 10.0)
        assert (status, killed_by, detail) == (MutantStatus.ERROR, None, f"pytest exit {code} ({what}): why")


def test_test_ids_that_changed_fall_back_to_their_function_then_their_file():
    collected = frozenset({"t.py::test_a[2026-11-27T10:00:00]", "t.py::test_b", "u.py::TestC::test_d[1]"})
    baseline_ids = ["t.py::test_a[2026-11-26T09:00:00]", "t.py::test_b", "u.py::TestC::test_gone",
                    "t.py::test_a[2026-11-26T09:00:01]"]
    assert stable_selection(baseline_ids, collected) == ["t.py::test_a", "t.py::test_b", "u.py"]
    assert stable_selection(baseline_ids, None) == baseline_ids  # no warm-up collection: as given


def test_the_suites_own_arguments_pass_unchanged():
    suite = ["tests/errors", "-p", "no:randomly", "-p", "no:xdist", "-m", "not slow", "-k", "not slow"]
    assert stable_selection(suite, frozenset({"tests/errors/test_x.py::test_y"})) == suite


def test_a_timeout_after_the_tests_were_widened_is_no_verdict(tmp_path):
    run = RunState(tmp_path, [MutantJob("m.x_f__mutmut_1", ("t.py::test_a[1]",), 2, 0.1)])
    run.ordered_tests(run.jobs["m.x_f__mutmut_1"])
    run.started["m.x_f__mutmut_1"] -= 5  # it ran past its 1 s wall limit
    (tmp_path / "m.x_f__mutmut_1.widened").write_text("t.py")
    run.collect(SimpleNamespace(mutant_name="m.x_f__mutmut_1", exit_code=-9))
    [outcome] = run.unchecked
    assert outcome["status"] == "error"
    assert outcome["detail"].endswith("running t.py in place of test ids that changed since the baseline")


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
            on_outcome(RawOutcome(name, MutantStatus.KILLED, "t.py::test_a", 0.1, ""))


def _run_jobs(run: _Run, jobs: list[Job], tmp_path) -> dict:
    settings = SimpleNamespace(timeout_constant=1.0, timeout_multiplier=2.0)
    coverage = SimpleNamespace(baseline=Baseline(durations={"t.py::test_a": 0.1}, seconds=0.1))
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


@pytest.mark.parametrize("error", [InfrastructureError("mutmut crashed"), RedBaselineError("the suite fails"),
                                   ConfigError("GATE_LEVERS_OFF names unknown levers x")])
def test_an_error_in_the_driver_reaches_the_gate_as_its_own_class(error, capsys):
    protocol.emit_error(error)
    event = protocol.parse(capsys.readouterr().out.strip())
    with pytest.raises(type(error)) as raised:
        protocol.raise_error(event)
    assert type(raised.value) is type(error) and str(raised.value) == str(error)
    assert protocol.parse("pytest's own output") is None
