"""The mutmut driver's boundary (`gate.wire.driver`): every message comes back as it was written,
and a field renamed on the writing side, in each direction, is a `WireError` that names it, never
a default on the reading side."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gate.errors import InfrastructureError
from gate.result import Mutant, MutantStatus
from gate.wire import codec
from gate.wire import driver as wire
from gate.wire.codec import OtherFormat, WireError

SETUP = wire.MutmutSetup(source_paths=("pkg",), files=("pkg/store.py", "pkg/io.py"), also_copy=("tests", "conftest.py"),
                         max_workers=2, tests=("tests",), pytest_args=("-p", "no:randomly"),
                         import_roots=("src", "."))
MUTANT = Mutant(name="pkg.store.xǁStoreǁload__mutmut_3", file="pkg/store.py", unit="Store.load", operator="swallow",
                origin="gate", start=12, end=13, original="    raise", replacement="    pass",
                diff="@@ -12 +12 @@\n-    raise\n+    pass\n", message_only=True)
JOB = wire.MutantJob("pkg.store.x_f__mutmut_1", ("tests/t.py::test_a", "tests/t.py::test_b[1]"), 7, 1.25,
                     group="pkg/store.py:f", first="tests/t.py::test_b[1]")
OUTCOME = wire.Outcome(name=JOB.name, status=MutantStatus.KILLED, killed_by="tests/t.py::test_a", seconds=0.125,
                       detail="AssertionError: 2 != 1")
GENERATION = wire.Generation(mutants=(MUTANT,), mutmut_total=40, gate_total=9, dropped_invalid=1,
                             equivalent={"same bytecode as the original": 2}, seconds=1.5)


def renamed(message: Any, old: str, new: str) -> Any:
    """`message` as a writer with field `old` renamed to `new` would write it (same kind)."""
    fields = [(new if f.name == old else f.name, Any) for f in dataclasses.fields(message)]
    assert any(name == new for name, _ in fields), f"{type(message).__name__} has no field {old}"
    cls = dataclasses.make_dataclass(type(message).__name__, fields, frozen=True)
    return cls(**{(new if f.name == old else f.name): getattr(message, f.name) for f in dataclasses.fields(message)})


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [
    wire.GenerateSpec(setup=SETUP, regions={"pkg/store.py": (wire.Span(3, 5, "except"), wire.Span(9, 9, "raise")),
                                           "pkg/io.py": ()},
                      operators=wire.OperatorSpec(enabled=("broaden", "swallow"),
                                                  exceptions={"pkg/store.py": {"unresolved": {"E": "why"}}})),
    wire.RunSpec(setup=SETUP, memory_mb=512),
], ids=["generate", "run"])
def test_a_spec_comes_back_as_written(spec, tmp_path):
    phase = wire.Phase.GENERATE if isinstance(spec, wire.GenerateSpec) else wire.Phase.RUN
    path = wire.spec_path(tmp_path, phase)
    wire.write_spec(path, spec)
    assert path.parent.name == "mutants" and path.name == f".gate-{phase.value}-spec.json"
    assert wire.read_spec(phase, path) == spec


def test_the_generate_spec_reads_as_the_operators_and_regions_expect_it():
    spec = wire.GenerateSpec(setup=SETUP, regions={"pkg/store.py": (wire.Span(3, 5, "except"),)},
                             operators=wire.OperatorSpec(enabled=("swallow",), exceptions={}))
    assert spec.operators.config() == {"enabled": ["swallow"], "exceptions": {}}
    assert [s.row() for s in spec.regions_of("pkg/store.py")] == [(3, 5, "except")]
    assert spec.regions_of("pkg/other.py") == ()  # a file of the copy that is not guarded


def test_the_jobs_come_back_as_written():
    jobs = wire.Jobs(jobs=(JOB, wire.MutantJob("m.x_g__mutmut_2", ("t.py::test_c",), 2, 0.0)), check_cpu_limit=12)
    assert wire.read_jobs(wire.jobs_line(jobs)) == jobs
    assert "\n" not in wire.jobs_line(jobs)  # one line on the driver's stdin


@pytest.mark.parametrize("event, message, done", [
    (wire.Event.OUTCOME, OUTCOME, wire.RunResult),
    (wire.Event.OUTCOME, dataclasses.replace(OUTCOME, status=MutantStatus.TIMEOUT, killed_by=None), wire.RunResult),
    (wire.Event.DONE, GENERATION, wire.Generation),
    (wire.Event.DONE, wire.RunResult(tested=3, clean_checks=1), wire.RunResult),
    (wire.Event.ERROR, wire.ErrorReport(slug="red-suite", message="the suite fails"), wire.Generation),
])
def test_an_event_comes_back_as_written(event, message, done, capsys):
    wire.emit(event, message)
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(f"@@gate {event.value} ")
    assert wire.parse(line, done) == message


def test_the_generated_mutants_are_the_gates_own_type(capsys):
    wire.emit(wire.Event.DONE, GENERATION)
    [mutant] = wire.parse(capsys.readouterr().out.strip(), wire.Generation).mutants
    assert type(mutant) is Mutant and mutant == MUTANT


def test_other_output_of_the_driver_is_no_event():
    assert wire.parse("tests/t.py::test_a PASSED", wire.RunResult) is None


def test_an_unknown_event_or_error_slug_is_a_wire_error():
    with pytest.raises(WireError, match="unknown event 'checked'"):
        wire.parse('@@gate checked {"kind": "Checked", "format": 1}', wire.RunResult)
    with pytest.raises(WireError, match="unknown error slug 'gone'"):
        wire.raise_error(wire.ErrorReport(slug="gone", message="what it said"))


def test_a_done_event_of_the_other_phase_is_a_wire_error(capsys):
    wire.emit(wire.Event.DONE, wire.RunResult(tested=1, clean_checks=0))
    with pytest.raises(OtherFormat, match="expected a Generation message"):
        wire.parse(capsys.readouterr().out.strip(), wire.Generation)


@pytest.mark.parametrize("result", [
    wire.WorkerResult(exit_code=1, killed_by="t.py::test_a", seconds=0.25, detail="MemoryError: boom"),
    wire.WorkerResult(exit_code=4, killed_by=None, seconds=0.0, detail="not found: t.py::test_x"),
])
def test_a_workers_result_file_comes_back_as_written(result, tmp_path):
    wire.write_result(tmp_path, JOB.name, result)
    assert (tmp_path / f"{JOB.name}.json").exists()
    assert wire.read_result(tmp_path, JOB.name) == result
    assert wire.read_result(tmp_path, "m.x_other__mutmut_1") is None  # its worker died before writing one


def test_a_widened_selection_comes_back_as_written(tmp_path):
    wire.write_widened(tmp_path, JOB.name, wire.Widened(("t.py::test_a", "u.py")))
    assert (tmp_path / f"{JOB.name}.widened").exists()
    assert str(wire.read_widened(tmp_path, JOB.name)) == "t.py::test_a u.py"
    assert wire.read_widened(tmp_path, "m.x_other__mutmut_1") is None


def test_a_new_run_reads_no_result_of_the_last(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    wire.write_result(folder, JOB.name, wire.WorkerResult(0, None, 0.0, ""))
    wire.write_widened(folder, JOB.name, wire.Widened(("t.py",)))
    wire.clear_results(folder)
    assert wire.read_result(folder, JOB.name) is None and wire.read_widened(folder, JOB.name) is None


def test_a_sidecar_comes_back_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sidecar = wire.Sidecar(inputs_digest="f" * 64, source_sha="a" * 64, mutmut_total=4, gate_total=2, dropped_invalid=0,
                           equivalent={}, mutants=(MUTANT,))
    wire.write_sidecar("pkg/store.py", sidecar)
    assert (tmp_path / "mutants" / "pkg" / "store.py.gate.json").exists()
    assert wire.read_sidecar("pkg/store.py") == sidecar


def test_a_sidecar_an_older_gate_wrote_is_another_format(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wire.sidecar_path("m.py").parent.mkdir(parents=True)
    wire.sidecar_path("m.py").write_text('{"version": 2, "fingerprint": "x", "mutants": []}')
    with pytest.raises(OtherFormat):
        wire.read_sidecar("m.py")


# --- a field renamed on the writing side ---------------------------------------------------------


def test_gate_to_driver_a_renamed_spec_field_is_named(tmp_path):
    path = wire.spec_path(tmp_path, wire.Phase.RUN)
    wire.write_spec(path, renamed(wire.RunSpec(setup=SETUP, memory_mb=512), "memory_mb", "memory"))
    with pytest.raises(WireError, match=r"RunSpec \(format 1\): unknown field 'memory'"):
        wire.read_spec(wire.Phase.RUN, path)
    spec = wire.GenerateSpec(setup=renamed(SETUP, "import_roots", "roots"), regions={},
                             operators=wire.OperatorSpec(enabled=(), exceptions={}))
    wire.write_spec(path, spec)
    with pytest.raises(WireError, match=r"GenerateSpec \(format 1\)\.setup: unknown field 'roots'"):
        wire.read_spec(wire.Phase.GENERATE, path)


def test_gate_to_driver_a_renamed_job_field_is_named():
    jobs = wire.Jobs(jobs=(renamed(JOB, "cpu_limit", "cpu_seconds"),), check_cpu_limit=4)
    with pytest.raises(WireError, match=r"Jobs \(format 1\)\.jobs\[0\]: unknown field 'cpu_seconds'"):
        wire.read_jobs(wire.jobs_line(jobs))
    with pytest.raises(WireError, match=r"Jobs \(format 1\): unknown field 'check_limit'"):
        wire.read_jobs(wire.jobs_line(renamed(wire.Jobs(jobs=(), check_cpu_limit=4), "check_cpu_limit", "check_limit")))


@pytest.mark.parametrize("event, message, old, new, done", [
    (wire.Event.OUTCOME, OUTCOME, "killed_by", "killer", wire.RunResult),
    (wire.Event.DONE, GENERATION, "mutmut_total", "total", wire.Generation),
    (wire.Event.DONE, wire.RunResult(tested=3, clean_checks=1), "clean_checks", "checks", wire.RunResult),
    (wire.Event.ERROR, wire.ErrorReport(slug="infrastructure", message="m"), "slug", "error", wire.RunResult),
])
def test_driver_to_gate_a_renamed_event_field_is_named(event, message, old, new, done, capsys):
    wire.emit(event, renamed(message, old, new))
    with pytest.raises(WireError, match=rf"{type(message).__name__} \(format 1\): unknown field '{new}'"):
        wire.parse(capsys.readouterr().out.strip(), done)


def test_driver_to_gate_a_renamed_mutant_field_is_named(capsys):
    wire.emit(wire.Event.DONE, dataclasses.replace(GENERATION, mutants=(renamed(MUTANT, "unit", "function"),)))
    with pytest.raises(WireError, match=r"Generation \(format 1\)\.mutants\[0\]: unknown field 'function'"):
        wire.parse(capsys.readouterr().out.strip(), wire.Generation)


def test_worker_to_driver_a_renamed_result_field_is_named(tmp_path):
    result = wire.WorkerResult(exit_code=1, killed_by="t.py::test_a", seconds=0.5, detail="")
    wire.write_result(tmp_path, JOB.name, renamed(result, "killed_by", "failed_first"))
    with pytest.raises(WireError, match=r"WorkerResult \(format 1\): unknown field 'failed_first'"):
        wire.read_result(tmp_path, JOB.name)
    wire.write_widened(tmp_path, JOB.name, renamed(wire.Widened(("t.py",)), "selection", "tests"))
    with pytest.raises(WireError, match=r"Widened \(format 1\): unknown field 'tests'"):
        wire.read_widened(tmp_path, JOB.name)


def test_worker_to_driver_a_missing_result_field_is_named_too(tmp_path):
    (tmp_path / f"{JOB.name}.json").write_text(
        '{"kind": "WorkerResult", "format": 1, "exit_code": 1, "killed_by": null, "seconds": 0.5}')
    with pytest.raises(WireError, match=r"WorkerResult \(format 1\): missing field 'detail'"):
        wire.read_result(tmp_path, JOB.name)


def test_driver_to_later_driver_a_renamed_sidecar_field_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sidecar = wire.Sidecar(inputs_digest="f", source_sha="a", mutmut_total=0, gate_total=0, dropped_invalid=0,
                           equivalent={}, mutants=())
    wire.sidecar_path("m.py").parent.mkdir(parents=True)
    codec.write(wire.sidecar_path("m.py"), renamed(sidecar, "source_sha", "sha"), wire.SIDECAR_FORMAT)
    with pytest.raises(WireError, match=rf"Sidecar \(format {wire.SIDECAR_FORMAT}\): unknown field 'sha'"):
        wire.read_sidecar("m.py")


def test_a_wire_error_is_an_infrastructure_error():
    assert issubclass(WireError, InfrastructureError)  # exit 4, as a crash of the driver was
