"""The survivors' probe's boundary (`gate.wire.probe`): each message read back as written, and a
field renamed on the writing side, in each direction, is a `WireError` that names it."""

from __future__ import annotations

import json
import types

import pytest

from gate.mutmut_adapter.probe import _parsed
from gate.mutmut_adapter.recorder import Recorder
from gate.result import Suggestion
from gate.wire import codec
from gate.wire.probe import (
    FORMAT,
    Call,
    ChangedRun,
    Check,
    Difference,
    End,
    Found,
    Held,
    ProbeGroup,
    ProbeResults,
    ProbeSpec,
    RunReport,
    Site,
    Status,
    SurvivorResult,
    Target,
    Outcome,
    Where,
    not_reached,
)

TEST = "tests/test_engine.py::test_out_of_memory"

SPEC = ProbeSpec(
    groups=(ProbeGroup(module="serve.engine", short="xǁEngineǁrelease__mutmut_3",
                       mutants=("serve.engine.xǁEngineǁrelease__mutmut_3", "serve.engine.xǁEngineǁrelease__mutmut_4"),
                       tests=(TEST, "tests/test_engine.py::test_other"), durations={TEST: 0.5}),),
    pytest_args=("-x",), import_roots=("src", "."), workers=2, deadline=1765000000.5)

CALL = Call(via="", unobserved=None, site=Site(line=12, direct=True, names={"self": "engine"}), returned="None",
            raised=None, cause=None, context=None, suppress_context=None, frames=None, self_type="Engine",
            self_state={"model": "None"}, held={"Engine.model": Held(type="Model", freed=True, state={})},
            globals={"FAILURES": "1"}, logs=("ERROR 'out of memory'",), mocks={"global torch.cuda.empty_cache": ("call()",)},
            end=End(self_state={"n": "1"}, freed=False, held={}))
RAISED = Call(via="the function wrapped it returned", unobserved=None, site=None, returned=None,
              raised="RetryError('x')", cause="OSError('disk')", context=None, suppress_context=True, frames=("retry",),
              self_type="", self_state={}, held={}, globals={}, logs=(), mocks={}, end=None)

FOUND = Found(test=TEST, first=Difference(what="Engine.model is None on the original but a Model on the mutant",
                                          read="model", site=CALL.site,
                                          check=Check(target=Target.SELF, attr="model", original="None",
                                                      mutant="a Model")),
              others=(Difference(what="the log records differ", read="caplog", site=None,
                                 check=Check(target=Target.LOG, original=["ERROR 'x'"], mutant=[])),),
              where=Where(file="tests/test_engine.py", line=10))

REPORT = RunReport(exit_code=1, tests={TEST: Outcome(passed=True, message=None),
                                       "tests/t.py::test_a": Outcome(passed=False, message="failed in call: boom")},
                   calls={TEST: (CALL, RAISED)}, found=FOUND)

SUGGESTION = Suggestion(test=TEST, file="tests/test_engine.py", after_line=20, anchor="    engine.release()",
                        lines=("    assert engine.model is None",))

RESULTS = ProbeResults(survivors={
    "serve.engine.xǁEngineǁrelease__mutmut_3": SurvivorResult(
        status=Status.DONE, excluded={"tests/t.py::test_a": "failed in call: boom on the original under the probe"},
        tests=2, why=None, found=FOUND, calls_seen=True, suggestion=SUGGESTION, unfinished=False),
    "serve.engine.xǁEngineǁrelease__mutmut_4": not_reached(2),
    "serve.engine.xǁEngineǁrelease__mutmut_5": SurvivorResult(
        status=Status.NOT_OBSERVED, excluded={}, tests=2, why="no test could be observed", found=None,
        calls_seen=False, suggestion=None, unfinished=False),
})


@pytest.mark.parametrize("message", [SPEC, REPORT, ChangedRun(exit_code=0), RESULTS, CALL, RAISED],
                         ids=lambda m: type(m).__name__)
def test_each_probe_message_reads_back_as_written(message):
    assert codec.loads(type(message), codec.dumps(message, FORMAT), FORMAT) == message


def renamed(message: object, path: tuple[str, ...], old: str, new: str) -> str:
    """`message` as its writer writes it, with the field `old` at `path` (keys, or list indexes as
    digits) renamed `new`."""
    data = json.loads(codec.dumps(message, FORMAT))
    holder = data
    for step in path:
        holder = holder[int(step)] if isinstance(holder, list) else holder[step]
    holder[new] = holder.pop(old)
    return json.dumps(data)


def test_a_renamed_field_of_the_gate_s_spec_is_named_by_the_probe(tmp_path):
    with pytest.raises(codec.WireError, match=r"ProbeSpec \(format 1\): unknown field 'max_workers'"):
        codec.loads(ProbeSpec, renamed(SPEC, (), "workers", "max_workers"), FORMAT)
    spec = tmp_path / ".gate-probe-spec.json"
    spec.write_text(renamed(SPEC, ("groups", "0"), "durations", "seconds"))
    with pytest.raises(codec.WireError, match=r"ProbeSpec \(format 1\)\.groups\[0\]: unknown field 'seconds'"):
        codec.read(ProbeSpec, spec, FORMAT)


def test_a_renamed_field_of_the_probe_s_results_is_named_by_the_gate():
    name = "serve.engine.xǁEngineǁrelease__mutmut_3"
    with pytest.raises(codec.WireError, match=r"ProbeResults \(format 1\)\.survivors\['[^']+'\]: unknown field "
                                              r"'difference'"):
        codec.loads(ProbeResults, renamed(RESULTS, ("survivors", name), "found", "difference"), FORMAT)
    left_out = json.loads(codec.dumps(RESULTS, FORMAT))
    del left_out["survivors"][name]["found"]
    with pytest.raises(codec.WireError, match=r"\]: missing field 'found'"):
        codec.from_data(ProbeResults, left_out, FORMAT)
    with pytest.raises(codec.WireError, match=r"\.found\.where: unknown field 'path'"):
        codec.loads(ProbeResults, renamed(RESULTS, ("survivors", name, "found", "where"), "file", "path"), FORMAT)
    with pytest.raises(codec.WireError, match=r"\.status: 'running' is not a Status"):
        data = json.loads(codec.dumps(RESULTS, FORMAT))
        data["survivors"][name]["status"] = "running"
        codec.from_data(ProbeResults, data, FORMAT)


def test_a_renamed_field_of_a_run_s_report_is_named_by_the_probe():
    text = renamed(REPORT, ("calls", TEST, "0"), "self_state", "self")
    with pytest.raises(codec.WireError, match=r"RunReport \(format 1\)\.calls\['[^']+'\]\[0\]: unknown field 'self'"):
        _parsed(RunReport, (text + "\n").encode())
    with pytest.raises(codec.WireError, match=r"\.found\.first: unknown field 'words'"):
        _parsed(RunReport, (renamed(REPORT, ("found", "first"), "what", "words") + "\n").encode())
    with pytest.raises(codec.WireError, match=r"ChangedRun \(format 1\): unknown field 'code'"):
        _parsed(ChangedRun, (renamed(ChangedRun(exit_code=1), (), "exit_code", "code") + "\n").encode())


def test_a_run_that_wrote_nothing_whole_comes_back_as_none():
    whole = codec.dumps(ChangedRun(exit_code=1), FORMAT) + "\n"
    assert _parsed(ChangedRun, whole.encode()) == ChangedRun(exit_code=1)
    assert _parsed(ChangedRun, b"") is None and _parsed(ChangedRun, whole.encode()[:10]) is None


def test_what_the_recorder_saw_crosses_the_pipe_unchanged():
    class Engine:
        def __init__(self):
            self.model, self.n = object(), 0

        def release(self):
            self.model = None
            self.n += 1
            return self.n

    recorder = Recorder()
    recorder.start_test(TEST, None)
    recorder.wrap(Engine.release, types.ModuleType("serve.engine"))(Engine())
    recorder.finish_test()
    [seen] = recorder.observed(TEST)
    assert seen.returned == "1" and seen.self_state["n"] == "1" and seen.end is not None
    assert codec.loads(Call, codec.dumps(seen, FORMAT), FORMAT) == seen
    assert recorder.observed("tests/t.py::test_without_calls") == ()


def test_the_explanation_cache_reads_back_and_takes_an_older_file_for_a_miss(tmp_path):
    from gate.steps.explain import Explanation, ExplanationCache

    path = tmp_path / "explanations.json"
    cache = ExplanationCache(path)
    cache.cold_seconds = 3.5
    cache.put("m", "key", Explanation("after t, x differs", "named", SUGGESTION))
    cache.save()
    again = ExplanationCache(path)
    assert again.cold_seconds == 3.5 and again.get("m", "key") == Explanation("after t, x differs", "named", SUGGESTION)
    assert again.get("m", "another key") is None
    path.write_text(json.dumps({"version": [1, "0.1"], "cold_seconds": 2.0, "entries": {}}))  # format 1
    older = ExplanationCache(path)
    assert older.entries == {} and older.cold_seconds is None
