"""The missing assertion (`gate.steps.explain`, `gate.mutmut_adapter.probe`): for each survivor,
what its tests could have seen at the mutated function's exit, and which test did not check it."""

from __future__ import annotations

import json

import pytest

from gate.mutmut_adapter.probe import describe
from gate.steps.explain import NO_DIFFERENCE, missing_check
from tests.gate.conftest import run_gate

TEST = "tests/test_engine.py::test_out_of_memory_is_counted_and_raised"


def call(**left: object) -> dict:
    """What the probe records of one call, with `left` changed."""
    return {"returned": "None", "cause": None, "self_type": "Engine", "self": {"out_of_memory_count": "1"},
            "held": {}, "globals": {}, "logs": [], "mocks": {}, **left}


def runs(original: list[dict], mutant: list[dict]) -> dict:
    return {"original": {"exit_code": 0, "calls": {TEST: original}}, "mutant": {"exit_code": 0, "calls": {TEST: mutant}}}


def source(text: str):
    return lambda nodeid: text


def test_the_first_difference_is_named_with_the_test_and_what_it_does_not_read():
    found = missing_check(runs([call(self={"model_instance": "None"})], [call(self={"model_instance": "a Model"})]),
                          [TEST], source("def test_x():\n    assert engine.out_of_memory_count == 1\n"))
    assert found == (f"after {TEST}, Engine.model_instance is None on the original but a Model on the mutant; "
                     "no assertion in that test reads model_instance")


def test_a_name_the_test_reads_is_said_to_be_read_but_not_this_value():
    found = missing_check(runs([call(self={"n": "1"})], [call(self={"n": "0"})]), [TEST],
                          source("def test_x():\n    print(engine.n)\n"))
    assert found.endswith("that test reads n, but not this value of it")


@pytest.mark.parametrize("left_original, left_mutant, said", [
    ({"returned": "1"}, {"raised": "MemoryError('x')"}, "the call returned 1 on the original but raised "
                                                         "MemoryError('x') on the mutant"),
    ({"raised": "E('a')", "cause": "OSError('disk')"}, {"raised": "E('a')", "cause": None},
     "the exception's __cause__ is OSError('disk') on the original but None on the mutant"),
    ({"held": {"Store.handle": {"type": "Handle", "state": {"closed": "1"}}}},
     {"held": {"Store.handle": {"type": "Handle", "state": {"closed": "0"}}}},
     "the Handle in Store.handle when the call began has closed = 1 on the original but 0 on the mutant"),
    ({"globals": {"FAILURES": "1"}}, {"globals": {"FAILURES": "0"}},
     "the module global FAILURES is 1 on the original but 0 on the mutant"),
    ({"logs": ["ERROR 'out of memory'"]}, {"logs": ["DEBUG 'out of memory'"]},
     "the log records are [\"ERROR 'out of memory'\"] on the original but [\"DEBUG 'out of memory'\"] on the mutant"),
    ({"mocks": {"argument backend": ["call.empty_cache()"]}}, {"mocks": {"argument backend": []}},
     "the calls to the mock argument backend are ['call.empty_cache()'] on the original but [] on the mutant"),
])
def test_each_thing_a_test_could_observe(left_original, left_mutant, said):
    found = missing_check(runs([call(**left_original)], [call(**left_mutant)]), [TEST], source("def test_x(): pass"))
    assert found.startswith(f"after {TEST}, {said}; ")


def test_what_differs_between_two_runs_of_the_original_is_no_effect_of_the_mutant():
    clock = {"original": {"exit_code": 0, "calls": {TEST: [call(self={"started": "10.5", "n": "1"})]}},
             "original_again": {"exit_code": 0, "calls": {TEST: [call(self={"started": "11.2", "n": "1"})]}},
             "mutant": {"exit_code": 0, "calls": {TEST: [call(self={"started": "12.9", "n": "0"})]}}}
    assert missing_check(clock, [TEST], source("")).startswith(
        f"after {TEST}, Engine.n is 1 on the original but 0 on the mutant")


def test_nothing_different_at_the_exit_says_so():
    assert missing_check(runs([call()], [call()]), [TEST], source("")) == NO_DIFFERENCE
    assert missing_check(runs([call(), call()], [call()]), [TEST], source("")).startswith(
        f"after {TEST}, the function ran 2 times on the original but 1 on the mutant")


def test_what_the_probe_could_not_see_is_never_called_no_difference():
    failed = runs([call()], [call()])
    failed["mutant"]["exit_code"] = 1
    assert missing_check(failed, [TEST], source("")).startswith("not observed: the tests ended with exit 1 on the mutant")
    generator = runs([{"unobserved": "a generator: its body runs as it is iterated, after the call's exit"}], [])
    assert missing_check(generator, [TEST], source("")) == (
        "not observed: a generator: its body runs as it is iterated, after the call's exit")
    bypassed = {"original": {"exit_code": 0, "calls": {}}, "mutant": {"exit_code": 0, "calls": {}}}
    assert missing_check(bypassed, [TEST], source("")).startswith("not observed: no call of the function was seen")


def test_values_are_described_the_same_in_every_run():
    class Model:
        def __call__(self):
            return 1

    assert describe(Model()) == "a Model"  # never an address
    assert describe(None) == "None" and describe("x" * 200).endswith("...")
    assert describe({"a": 1}) == "{'a': 1}" and describe(list(range(20))) == "a list of 20"
    assert describe(ValueError("bad")) == "ValueError('bad')"
    assert describe(KeyError(f"{object()!r}")) == "KeyError(\"'<object object>'\")"  # no address
    from unittest import mock

    assert describe(mock.MagicMock()) == "a MagicMock" and describe(mock.Mock()) == "a Mock"


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_a_survivor_names_the_check_its_test_lacks(fixture_project):
    run = run_gate(fixture_project("oom"))
    assert run.exit_code == 1, run.stdout + run.stderr
    released = [m for m in run.mutants() if m["status"] == "survived" and m["operator"] == "reset-delete"]
    expected = (f"after {TEST}, Engine.model_instance is None on the original but a Model on the mutant; no "
                "assertion in that test reads model_instance")
    assert [m["missing_check"] for m in released] == [expected]
    assert f"    missing check: {expected}" in run.stdout
    sarif = json.loads((run.project / "reports" / "gate.sarif").read_text())["runs"][0]["results"]
    assert any(r["message"]["text"].endswith(f"Missing check: {expected}") for r in sarif)
    report = json.loads((run.project / "reports" / "mutation" / "mutation.json").read_text())
    reasons = [m.get("statusReason") for m in report["files"]["serve/engine.py"]["mutants"]]
    assert f"missing check: {expected}" in reasons
    # a counter set to 1 where one failure makes it 1 anyway: nothing differs at the exit, and it says so
    [counter] = [m for m in run.mutants() if m["operator"] == "augmented_assignment"]
    assert counter["status"] == "survived" and counter["missing_check"] == NO_DIFFERENCE
    assert "explain" in run.summary["timings"]


def test_a_patched_function_is_reached_through_the_modules_the_code_names():
    import types
    from unittest import mock

    from gate.mutmut_adapter.probe import _mocks

    torch, cuda, engine = (types.ModuleType(n) for n in ("torch", "torch.cuda", "serve.engine"))
    torch.cuda, cuda.empty_cache = cuda, mock.Mock()
    engine.torch, engine.backend = torch, mock.MagicMock()
    exec("def recover(self):\n    torch.cuda.empty_cache()\n", vars(engine))
    found = _mocks(engine.recover, (), {}, engine)
    assert set(found) == {"global torch.cuda.empty_cache", "global backend"}
    assert found["global torch.cuda.empty_cache"] is cuda.empty_cache


@pytest.mark.parametrize("asynchronous", [False, True])
def test_the_recorder_keeps_what_each_call_left_and_never_changes_it(asynchronous):
    import asyncio
    import types

    from gate.mutmut_adapter.probe import Recorder

    class Engine:
        def __init__(self):
            self.n = 0

        def go(self, fail):
            self.n += 1
            if fail:
                raise ValueError("x") from KeyError("k")
            return 5

    async def go_async(self, fail):
        return Engine.go(self, fail)

    recorder = Recorder()
    recorder.test = TEST
    wrapped = recorder.wrap(go_async if asynchronous else Engine.go, types.ModuleType("serve.engine"))
    engine = Engine()

    def call_it(fail):
        result = wrapped(engine, fail)
        return asyncio.run(result) if asynchronous else result

    assert call_it(False) == 5  # the value and the exception reach the test unchanged
    with pytest.raises(ValueError, match="x"):
        call_it(True)
    seen = [{k: c[k] for k in ("returned", "raised", "cause", "self") if k in c} for c in recorder.calls[TEST]]
    assert seen == [{"returned": "5", "self": {"n": "1"}},
                    {"raised": "ValueError('x')", "cause": "KeyError(\"'k'\")", "self": {"n": "2"}}]
