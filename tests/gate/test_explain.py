"""The missing check (`gate.steps.explain`, `gate.observation`, `gate.suggestions`, the probe and
its recorder): for each survivor, what its tests could have seen, which test did not check it, and
the assertion to add, verified on the original and the mutant."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import subprocess
import sys
import types
import weakref
from unittest import mock

import pytest

from gate.mutmut_adapter.recorder import Recorder, _as_call, _mocks, describe
from gate.observation import differences
from gate.result import Suggestion
from gate.steps.explain import NO_DIFFERENCE, explanation, order_tests
from gate.suggestions import candidates
from gate.wire.probe import Call, Check, Difference, Found, Site, Status, SurvivorResult, Target, not_reached
from tests.gate.conftest import run_gate

TEST = "tests/test_engine.py::test_out_of_memory_is_counted_and_raised"


def call(**left: object) -> Call:
    """What the recorder keeps of one call, with `left` changed."""
    record = {"via": "", "returned": "None", "self_type": "Engine", "self": {"out_of_memory_count": "1"},
              "held": {}, "globals": {}, "logs": [], "mocks": {}, "site": None, **left}
    if "end" in record:
        record["end"] = {"freed": False, **record["end"]}
    return _as_call(record)


def compare_test(before: list[Call], after: list[Call], again: list[Call]) -> Difference | None:
    """The test's difference: the first of its calls'."""
    found = differences(before, after, again)
    return found[0] if found else None


def raised(**left: object) -> Call:
    shape = {"raised": "RetryError('x')", "cause": None, "context": None, "suppress_context": False,
             "frames": ["retry"]}
    return call(**{**shape, **left})


# ---------------------------------------------------------------------------- what differs


@pytest.mark.parametrize("original, mutant, said", [
    (call(returned="1"), call(raised="MemoryError('x')"),
     "the call returned 1 on the original but raised MemoryError('x') on the mutant"),
    (raised(cause="OSError('disk')"), raised(cause=None),
     "the call raised RetryError('x'), and the exception's __cause__ is OSError('disk') on the original but None on the mutant"),
    (raised(suppress_context=True, context="ValueError('n')"), raised(suppress_context=False, context="ValueError('n')"),
     "the call raised RetryError('x'), and the exception's __suppress_context__ is True on the original but False on the "
     "mutant (`raise ... from None`)"),
    (raised(context="KeyError('k')"), raised(context=None),
     "the call raised RetryError('x'), and the exception's __context__ is KeyError('k') on the original but None on the mutant"),
    (raised(frames=["fetch", "missing"]), raised(frames=["fetch"]),
     "the call raised RetryError('x'), and the exception's traceback passes through fetch, missing on the original but fetch on the mutant"),
    (raised(), raised(raised="KeyboardInterrupt('')"),
     "the call raised RetryError('x') on the original but raised KeyboardInterrupt('') on the mutant"),
    (call(self={"model_instance": "None"}), call(self={"model_instance": "a Model"}),
     "Engine.model_instance is None on the original but a Model on the mutant"),
    (call(end={"self": {"n": "2"}, "held": {}}), call(end={"self": {"n": "1"}, "held": {}}),
     "at the test's end, Engine.n is 2 on the original but 1 on the mutant"),
    (call(held={"Engine.model": {"type": "Model", "freed": True}}),
     call(held={"Engine.model": {"type": "Model", "state": {}}}),
     "the Model that Engine.model held when the call began is freed on the original but still alive on the mutant"),
    (call(held={"Store.handle": {"type": "Handle", "state": {"closed": "1"}}}),
     call(held={"Store.handle": {"type": "Handle", "state": {"closed": "0"}}}),
     "the Handle in Store.handle when the call began has closed = 1 on the original but 0 on the mutant"),
    (call(globals={"FAILURES": "1"}), call(globals={"FAILURES": "0"}),
     "the module global FAILURES is 1 on the original but 0 on the mutant"),
    (call(logs=["ERROR 'out of memory'"]), call(logs=["DEBUG 'out of memory'"]),
     "the log records are [\"ERROR 'out of memory'\"] on the original but [\"DEBUG 'out of memory'\"] on the mutant"),
    (call(mocks={"global torch.cuda.empty_cache": ["call()"]}), call(mocks={"global torch.cuda.empty_cache": []}),
     "the calls to the mock global torch.cuda.empty_cache are ['call()'] on the original but [] on the mutant"),
    (call(via="the function wrapped it returned", returned="1"), call(via="the function wrapped it returned",
                                                                     returned="2"),
     "the call of the function wrapped it returned returned 1 on the original but returned 2 on the mutant"),
])
def test_each_thing_a_test_could_observe_is_named(original, mutant, said):
    found = compare_test([original], [mutant], [original])
    assert found is not None and found.what == said


def test_what_differs_between_two_runs_of_the_original_is_no_effect_of_the_mutant():
    first, again = call(self={"started": "10.5", "n": "1"}), call(self={"started": "11.2", "n": "1"})
    found = compare_test([first], [call(self={"started": "12.9", "n": "0"})], [again])
    assert found.what == "Engine.n is 1 on the original but 0 on the mutant"
    assert compare_test([first], [call(self={"started": "12.9", "n": "1"})], [again]) is None


def test_a_different_number_of_calls_is_a_difference():
    assert compare_test([call(), call()], [call()], [call(), call()]).what == (
        "the function ran 2 times on the original but 1 on the mutant")


# ------------------------------------------------------------------------ in words, per test


def probed(difference: dict | None = None, status: str = "done", **result: object) -> SurvivorResult:
    found = None if difference is None else Found(
        test=difference["test"], first=Difference(what=difference["what"], read=difference["read"], check=None,
                                                  site=None), others=(), where=None)
    return SurvivorResult(**{"excluded": {}, "tests": 3, "why": None, "calls_seen": True, "suggestion": None,
                             "unfinished": False, **result}, status=Status(status), found=found)


def words(result: SurvivorResult, source: str = "def test_x(): pass") -> object:
    return explanation(result, lambda nodeid: source, "SPENT")


def test_the_first_difference_is_named_with_the_test_and_what_it_does_not_read():
    found = words(probed(difference={"test": TEST, "what": "Engine.model_instance is None on the original but a "
                                                          "Model on the mutant", "read": "model_instance"}),
                  "def test_x():\n    assert engine.out_of_memory_count == 1\n")
    assert found.kind == "named" and found.text == (
        f"after {TEST}, Engine.model_instance is None on the original but a Model on the mutant; "
        "no assertion in that test reads model_instance")
    read = words(probed(difference={"test": TEST, "what": "x", "read": "n"}), "def test_x():\n    print(engine.n)\n")
    assert read.text.endswith("that test reads n, but not this value of it")


def test_tests_that_fail_on_the_original_under_the_probe_are_left_out_and_named():
    excluded = {"tests/t.py::test_a": "failed in call: AssertionError: boom on the original under the probe"}
    found = words(probed(excluded=excluded, difference={"test": TEST, "what": "x is 1 on the original but 2 on the "
                                                                              "mutant", "read": "x"}))
    assert found.kind == "named"
    assert found.text.endswith("(1 of 3 tests could not be observed and were left out; the first, tests/t.py::test_a: "
                               "failed in call: AssertionError: boom on the original under the probe)")
    assert words(probed(excluded=excluded)).text == NO_DIFFERENCE + found.text[found.text.index(" (1 of 3"):]
    nothing = words(probed(status="not observed", excluded=excluded, tests=1))
    assert nothing.kind == "not observed" and nothing.text == (
        "not observed: 1 of 1 tests could not be observed; the first, tests/t.py::test_a: failed in call: "
        "AssertionError: boom on the original under the probe")


def test_no_difference_says_what_was_and_was_not_observed_and_never_equivalent():
    found = words(probed())
    assert found.kind == "no difference" and found.text == NO_DIFFERENCE
    assert "equivalent" not in NO_DIFFERENCE and "not observed:" in NO_DIFFERENCE
    assert words(probed(calls_seen=False)).text.startswith("not observed: no call of the function was seen")
    assert words(not_reached(1)).kind == "budget"


def test_tests_are_ordered_to_show_a_difference_first():
    tests = ["t::slow_named", "t::fast", "t::killer", "t::fastest"]
    sources = {"t::slow_named": "def t(): e.out_of_memory_count", "t::fast": "def t(): pass",
               "t::killer": "def t(): pass", "t::fastest": "def t(): pass"}
    durations = {"t::slow_named": 5.0, "t::fast": 0.2, "t::killer": 9.0, "t::fastest": 0.1}
    assert order_tests(tests, ["t::killer"], {"out_of_memory_count"}, sources.get, durations) == [
        "t::killer", "t::slow_named", "t::fastest", "t::fast"]


# ------------------------------------------------------------------------------ suggestions

UNITTEST_SOURCE = '''import unittest


class OomTests(unittest.TestCase):
    def test_oom(self):
        engine = make()
        with self.assertRaises(MemoryError) as raised:
            engine.infer(1)
        self.assertEqual(str(raised.exception), "x")
'''

PYTEST_SOURCE = '''def test_oom(spies):
    engine = make()
    for _ in range(2):
        engine.infer(1)
    assert engine
'''


def difference(check: dict, line: int, names: dict, direct: bool = False) -> Difference:
    return Difference(what="", read=None, check=Check(**{**check, "target": Target(check["target"])}),
                      site=Site(line=line, names=names, direct=direct))


def test_a_self_attribute_is_checked_in_the_test_style_after_the_statement_that_made_the_call():
    unittest_one = candidates("tests/test_e.py::OomTests::test_oom", UNITTEST_SOURCE, difference(
        {"target": "self", "attr": "out_of_memory_count", "original": "1", "mutant": "0"}, 8, {"self": "engine"}))
    # after the `with self.assertRaises` block (nothing inside it runs after the raise)
    assert [(s.after_line, s.lines) for s in unittest_one] == [
        (8, ("        self.assertEqual(engine.out_of_memory_count, 1)",))]
    pytest_one = candidates("tests/test_e.py::test_oom", PYTEST_SOURCE, difference(
        {"target": "self", "attr": "model", "original": "None", "mutant": "a Model"}, 4, {"self": "engine"}))
    assert [(s.after_line, s.lines) for s in pytest_one] == [(4, ("        assert engine.model is None",)),
                                                             (4, ("    assert engine.model is None",))]
    released = candidates("tests/test_e.py::test_oom", PYTEST_SOURCE, difference(
        {"target": "self", "attr": "model", "original": "a Model", "mutant": "None"}, 4, {"self": "engine"}))
    assert released[0].lines == ("        assert engine.model is not None",)


def test_a_mock_an_exception_and_a_returned_value_are_checked():
    mocked = candidates("tests/test_e.py::test_oom", PYTEST_SOURCE, difference(
        {"target": "mock", "mock": "global torch.cuda.empty_cache", "original": ["call()"]}, 4,
        {"global torch.cuda.empty_cache": "spies.cuda"}))
    assert mocked[0].lines == ("        spies.cuda.assert_called_once_with()",)
    cause = candidates("tests/test_e.py::OomTests::test_oom", UNITTEST_SOURCE, difference(
        {"target": "raised", "part": "cause", "original": "OSError('disk')"}, 8, {}))
    assert [(s.after_line, s.lines) for s in cause] == [
        (8, ("        self.assertEqual(type(raised.exception.__cause__).__name__, 'OSError')",))]
    suppressed = candidates("tests/test_e.py::OomTests::test_oom", UNITTEST_SOURCE, difference(
        {"target": "raised", "part": "suppress_context", "original": True}, 8, {}))
    assert suppressed[0].lines == ("        self.assertIs(raised.exception.__suppress_context__, True)",)
    kind = candidates("tests/test_e.py::OomTests::test_oom", UNITTEST_SOURCE, difference(
        {"target": "raised", "part": "type", "original": "RetryError('gave up')", "mutant": "KeyboardInterrupt('')"},
        8, {}))
    assert kind[0].lines == ("        self.assertEqual(type(raised.exception).__name__, 'RetryError')",
                             "        self.assertEqual(str(raised.exception), 'gave up')")
    message = candidates("tests/test_e.py::OomTests::test_oom", UNITTEST_SOURCE, difference(
        {"target": "raised", "part": "type", "original": "RetryError('gave up')", "mutant": "RetryError('GAVE UP')"},
        8, {}))
    assert message[0].lines == ("        self.assertEqual(str(raised.exception), 'gave up')",)  # the type is checked
    value = candidates("tests/test_v.py::test_v", "def test_v():\n    n = parse('3')\n", difference(
        {"target": "returned", "original": "3"}, 2, {}, direct=True))
    assert value[0].lines == ("    assert n == 3",)


def test_a_log_record_is_checked_where_the_test_captures_records():
    unittest_source = UNITTEST_SOURCE.replace("with self.assertRaises(MemoryError) as raised:",
                                              "with self.assertLogs('serve', level='DEBUG') as logs:")
    logged = difference({"target": "log", "original": ["ERROR 'out of memory'"], "mutant": ["DEBUG 'out of memory'"]},
                        8, {})
    [after_block] = candidates("tests/test_e.py::OomTests::test_oom", unittest_source, logged)
    assert (after_block.after_line, after_block.lines) == (8, (
        "        self.assertIn(('ERROR', 'out of memory'), [(r.levelname, r.getMessage()) for r in logs.records])",))
    with_caplog = PYTEST_SOURCE.replace("def test_oom(spies):", "def test_oom(caplog):")
    in_loop = dataclasses.replace(logged, site=dataclasses.replace(logged.site, line=4))
    assert candidates("tests/test_e.py::test_oom", with_caplog, in_loop)[0].lines == (
        "        assert ('ERROR', 'out of memory') in [(r.levelname, r.getMessage()) for r in caplog.records]",)
    assert candidates("tests/test_e.py::test_oom", PYTEST_SOURCE, in_loop) == []  # no caplog: nowhere to read them


def test_an_exception_the_test_catches_itself_is_checked_in_its_handler():
    source = ("def test_retry():\n    try:\n        retry(flaky)\n    except RetryError as error:\n"
              "        assert error\n")
    [suggestion] = candidates("tests/test_r.py::test_retry", source, difference(
        {"target": "raised", "part": "cause", "original": "OSError('disk')"}, 3, {}))
    assert (suggestion.after_line, suggestion.lines) == (5, ("        assert type(error.__cause__).__name__ == 'OSError'",))


def test_nothing_is_suggested_where_the_value_cannot_be_written_or_named():
    unnamed = difference({"target": "self", "attr": "n", "original": "1", "mutant": "0"}, 4, {})
    assert candidates("tests/test_e.py::test_oom", PYTEST_SOURCE, unnamed) == []
    unwritable = difference({"target": "self", "attr": "m", "original": "a Model", "mutant": "a Other"}, 4,
                            {"self": "engine"})
    assert candidates("tests/test_e.py::test_oom", PYTEST_SOURCE, unwritable) == []
    no_site = Difference(what="", read=None, check=Check(target=Target.SELF, attr="n", original="1"), site=None)
    assert candidates("tests/test_e.py::test_oom", PYTEST_SOURCE, no_site) == []


def test_a_suggestion_goes_in_only_where_its_anchor_still_is():
    suggestion = Suggestion(test="t.py::test_oom", file="t.py", after_line=4, anchor="        engine.infer(1)",
                            lines=("    assert engine",))
    assert suggestion.applied_to(PYTEST_SOURCE).splitlines()[4] == "    assert engine"
    with pytest.raises(ValueError, match="no longer reads"):
        suggestion.applied_to(PYTEST_SOURCE.replace("engine.infer(1)", "engine.infer(2)"))
    assert Suggestion.from_dict(suggestion.to_dict()) == suggestion


# ------------------------------------------------------------------------------ the recorder


def test_values_are_described_the_same_in_every_run():
    class Model:
        def __call__(self):
            return 1

    assert describe(Model()) == "a Model"  # never an address
    assert describe(None) == "None" and describe("x" * 200).endswith("...")
    assert describe({"a": 1}) == "{'a': 1}" and describe(list(range(20))) == "a list of 20"
    assert describe(ValueError("bad")) == "ValueError('bad')"
    assert describe(KeyError(f"{object()!r}")) == "KeyError(\"'<object object>'\")"  # no address
    assert describe(mock.MagicMock()) == "a MagicMock" and describe(mock.Mock()) == "a Mock"


def test_a_patched_function_is_reached_through_the_modules_the_code_names():
    torch, cuda, engine = (types.ModuleType(n) for n in ("torch", "torch.cuda", "serve.engine"))
    torch.cuda, cuda.empty_cache = cuda, mock.Mock()
    engine.torch, engine.backend = torch, mock.MagicMock()
    exec("def recover(self):\n    torch.cuda.empty_cache()\n", vars(engine))
    found = _mocks(engine.recover, (), {}, engine)
    assert set(found) == {"global torch.cuda.empty_cache", "global backend"}
    assert found["global torch.cuda.empty_cache"] is cuda.empty_cache


class Model:
    pass


class Engine:
    def __init__(self):
        self.model, self.n = Model(), 0

    def release(self, spy):
        """Drops the model and checks, as the engine's weakref spies do, that it is gone."""
        self.model = None
        gc.collect()
        spy(self)
        self.n += 1

    def fail(self, wrap):
        try:
            {}["key"]
        except KeyError as exc:
            if wrap == "cause":
                raise ValueError("wrapped") from exc
            if wrap == "none":
                raise ValueError("wrapped") from None
            raise ValueError("wrapped").with_traceback(exc.__traceback__)

    def decorate(self):
        def wrapped(x):
            self.n += x
            return x
        return wrapped


def test_an_object_the_code_releases_is_freed_under_observation():
    """The recorder holds `self`'s attributes and the arguments only weakly: the release contract
    a test checks with a weak reference holds under the probe exactly as without it."""
    recorder = Recorder()
    recorder.start_test(TEST, None)
    engine = Engine()
    model = weakref.ref(engine.model)
    alive_at_spy = []
    release = recorder.wrap(Engine.release, types.ModuleType("serve.engine"))
    release(engine, lambda e: alive_at_spy.append(model() is not None))
    assert alive_at_spy == [False] and model() is None
    recorder.finish_test()
    [seen] = recorder.calls[TEST]
    assert seen["held"]["Engine.model"] == {"type": "Model", "freed": True}
    assert seen["self"]["model"] == "None" and seen["end"]["self"]["n"] == "1"


def test_an_exception_s_shape_is_recorded_and_reaches_the_test_unchanged():
    recorder = Recorder()
    recorder.start_test(TEST, None)
    fail = recorder.wrap(Engine.fail, types.ModuleType("serve.engine"))
    for how in ("cause", "none", "frames"):
        with pytest.raises(ValueError, match="wrapped"):
            fail(Engine(), how)
    cause, none, frames = recorder.calls[TEST]
    assert cause["cause"] == "KeyError(\"'key'\")" and cause["suppress_context"]  # `from` suppresses it too
    assert none["cause"] is None and none["suppress_context"] and none["context"] == "KeyError(\"'key'\")"
    assert frames["frames"] == ["fail", "fail"] and cause["frames"] == ["fail"]


def test_a_function_it_returned_is_watched_too():
    recorder = Recorder()
    recorder.start_test(TEST, None)
    engine = Engine()
    wrapped = recorder.wrap(Engine.decorate, types.ModuleType("serve.engine"))(engine)
    assert wrapped(3) == 3 and engine.n == 3
    made, later = recorder.calls[TEST]
    assert made["returned"] == "a function" and later["via"] == "the function wrapped it returned"
    assert later["returned"] == "3" and later["self"] == {}


@pytest.mark.parametrize("asynchronous", [False, True])
def test_the_recorder_finds_the_test_statement_that_made_the_call(asynchronous):
    recorder = Recorder()
    engine = Engine()

    async def go_async(self, spy):
        return Engine.release(self, spy)

    wrapped = recorder.wrap(go_async if asynchronous else Engine.release, types.ModuleType("serve.engine"))

    def the_test():
        result = wrapped(engine, lambda e: None)
        return asyncio.run(result) if asynchronous else result

    recorder.start_test(TEST, the_test.__code__)
    the_test()
    [seen] = recorder.calls[TEST]
    # where the test is when the call runs: an async call's body runs inside `asyncio.run`
    assert seen["site"]["line"] == the_test.__code__.co_firstlineno + (2 if asynchronous else 1)
    assert seen["site"]["names"] == {"self": "engine"}
    assert seen["site"]["direct"] is not asynchronous  # a sync test called it itself


# ------------------------------------------------------------------------------ gate runs


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_a_survivor_names_the_check_its_test_lacks_with_a_verified_suggestion(fixture_project):
    project = fixture_project("oom")
    run = run_gate(project)
    assert run.exit_code == 1, run.stdout + run.stderr
    [released] = [m for m in run.mutants() if m["status"] == "survived" and m["operator"] == "reset-delete"]
    expected = (f"after {TEST}, Engine.model_instance is None on the original but a Model on the mutant; no "
                "assertion in that test reads model_instance")
    assert released["missing_check"] == expected and released["explained"] == "named"
    shown = "assert engine.model_instance is None after tests/test_engine.py:20"
    assert released["suggestion"]["lines"] == ["    assert engine.model_instance is None"]
    assert f"    missing check: {expected}" in run.stdout
    assert f"    suggested check (verified): {shown}" in run.stdout
    sarif = json.loads((run.project / "reports" / "gate.sarif").read_text())["runs"][0]["results"]
    [result] = [r for r in sarif if f"Missing check: {expected}" in r["message"]["text"]]
    [change] = result["fixes"][0]["artifactChanges"]
    assert change["artifactLocation"]["uri"] == "tests/test_engine.py"
    assert change["replacements"][0]["insertedContent"]["text"] == "    assert engine.model_instance is None\n"
    report = json.loads((run.project / "reports" / "mutation" / "mutation.json").read_text())
    reasons = [m.get("statusReason", "") for m in report["files"]["serve/engine.py"]["mutants"]]
    assert any(f"suggested check (verified): {shown}" in r for r in reasons)
    assert run.summary["counts"]["explanations"]["named"] >= 1 and "explain" in run.summary["timings"]

    # applied, the suggestion kills its mutant; the user's file is changed only by `suggest --apply`
    before = (project / "tests" / "test_engine.py").read_text()
    # named as the terminal prints it (`apply it: python -m gate suggest --apply '<label>'`)
    assert f"apply it: python -m gate suggest --apply '{released['label']}'" in run.stdout
    done = subprocess.run([sys.executable, "-m", "gate", "suggest", "--apply", released["label"], "--project",
                           str(project)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "gate: tests/test_engine.py changed" in done.stdout and "  after line 20:" in done.stdout
    after = (project / "tests" / "test_engine.py").read_text()
    assert after != before and "    assert engine.model_instance is None\n" in after
    again = run_gate(project)
    [killed] = [m for m in again.mutants() if m["name"] == released["name"]]
    assert killed["status"] == "killed", again.stdout


@pytest.mark.slow
def test_a_warm_run_explains_nothing_again(fixture_project):
    project = fixture_project("oom")
    first = run_gate(project)
    assert first.exit_code == 1
    second = run_gate(project)
    assert [m["missing_check"] for m in second.mutants()] == [m["missing_check"] for m in first.mutants()]
    assert "explain" in second.summary["timings"] and second.summary["timings"]["explain"] < 0.5
    off = run_gate(project, "--no-explain")
    assert off.exit_code == 1 and "explain" not in off.summary["timings"]
    assert {m["explained"] for m in off.mutants() if m["status"] == "survived"} == {"off"}


@pytest.mark.slow
def test_an_exhausted_budget_says_so_and_never_changes_the_verdict(fixture_project):
    run = run_gate(fixture_project("oom"), "--explain-seconds", "0")
    assert run.exit_code == 1
    survivors = [m for m in run.mutants() if m["status"] == "survived"]
    assert survivors and all(m["missing_check"] == "not explained: the explain budget (0 s) was spent; a later run "
                                                   "explains it" for m in survivors)


@pytest.mark.slow
def test_each_exception_shape_survivor_names_what_differs(fixture_project):
    run = run_gate(fixture_project("exceptions"))
    assert run.exit_code == 1, run.stdout + run.stderr
    by_operator = {}
    for m in run.mutants():
        if m["status"] == "survived":
            by_operator.setdefault((m["unit"], m["operator"]), m)
    expected = {
        ("parse_attempts", "raise-drop-cause"): "__suppress_context__ is True on the original but False",
        ("call_once", "raise-drop-cause"): "__cause__ is OSError('disk') on the original but None",
        ("retry", "narrow"): "raised RetryError('gave up') on the original but raised KeyboardInterrupt",
    }
    for key, said in expected.items():
        assert key in by_operator, sorted(by_operator)
        assert said in by_operator[key]["missing_check"], by_operator[key]["missing_check"]
        assert by_operator[key]["suggestion"], by_operator[key]
    frames = [m for (unit, _), m in by_operator.items() if unit == "call_keeping_frames"
              and "traceback passes through" in m["missing_check"]]
    assert frames and frames[0]["suggestion"]["lines"][0].strip() == "import traceback"
    assert not any("equivalent" in m["missing_check"] for m in run.mutants())


def test_a_group_s_tests_run_in_rounds_of_doubling_time():
    from gate.mutmut_adapter.probe import chunks

    tests = [f"t::{i}" for i in range(10)]
    assert chunks(tests, {t: 0.5 for t in tests}) == [tests[:3], tests[3:7], tests[7:]]
    assert chunks(tests[:2], {}) == [tests[:2]]  # the first round: at least three tests, or all
    assert [len(r) for r in chunks(tests, {})] == [10]  # no time known: one round


def test_log_records_are_seen_also_where_a_test_captures_them():
    import logging
    import unittest

    def log(self):
        logging.getLogger("serve.engine").error("out of memory")

    recorder = Recorder()
    recorder.start_test(TEST, None)
    wrapped = recorder.wrap(log, types.ModuleType("serve.engine"))

    class Captures(unittest.TestCase):
        def runTest(self):
            with self.assertLogs("serve", level="DEBUG") as captured:  # the logger stops propagating
                wrapped(Engine())
            self.assertEqual(captured.output, ["ERROR:serve.engine:out of memory"])

    outcome = unittest.TestResult()
    Captures().run(outcome)
    assert outcome.wasSuccessful(), outcome.failures
    [seen] = recorder.calls[TEST]
    assert seen["logs"] == ["ERROR 'out of memory'"]
    from gate.mutmut_adapter.recorder import _Records

    assert not any(isinstance(h, _Records) for name in ("", "serve") for h in logging.getLogger(name).handlers)


MIXIN_SOURCE = '''class CacheTests:
    def test_empty(self):
        cache = self.make()
        with self.assertRaises(KeyError):
            cache.popitem()
'''


def test_an_inherited_test_is_changed_where_it_is_defined_and_an_unnamed_raises_gets_a_name():
    raised_check = difference({"target": "raised", "part": "type", "original": "KeyError(\"'cache is empty'\")",
                               "mutant": "KeyError('None')"}, 8, {})
    # found by the line its code starts at, in the base class's module, not the node id's
    [suggestion] = candidates("tests/test_fifo.py::FIFOTest::test_empty", MIXIN_SOURCE.replace(
        "class CacheTests:", "class CacheTests(Base):\n    def helper(self):\n        self.assertTrue(1)\n"),
        raised_check, file="tests/__init__.py", line=5)
    assert suggestion.file == "tests/__init__.py" and suggestion.test == "tests/test_fifo.py::FIFOTest::test_empty"
    assert (suggestion.rewrite_line, suggestion.rewrite_to) == (7, "        with self.assertRaises(KeyError) as raised:")
    assert suggestion.lines == ("        self.assertEqual(str(raised.exception), \"'cache is empty'\")",)
    changed = suggestion.applied_to(MIXIN_SOURCE.replace(
        "class CacheTests:", "class CacheTests(Base):\n    def helper(self):\n        self.assertTrue(1)\n"))
    assert "with self.assertRaises(KeyError) as raised:\n            cache.popitem()\n        self.assertEqual(str(" \
        in changed
    assert "rewrite_to" in suggestion.to_dict() and Suggestion.from_dict(suggestion.to_dict()) == suggestion
    assert suggestion.shown().startswith("with self.assertRaises(KeyError) as raised: at tests/__init__.py:7, then ")


def test_a_suggestion_is_verified_in_memory_without_touching_the_file(tmp_path, monkeypatch):
    from gate.mutmut_adapter.probe import _reexecute

    module_file = tmp_path / "probe_target_module.py"
    module_file.write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module("probe_target_module")
    try:
        _reexecute(str(module_file), "VALUE = 2\n")
        assert sys.modules["probe_target_module"].VALUE == 2 and module.VALUE == 1
        assert module_file.read_text() == "VALUE = 1\n"  # nothing written
    finally:
        sys.modules.pop("probe_target_module", None)


def test_an_object_with_slots_is_described_by_its_slots():
    from gate.mutmut_adapter.recorder import _state

    class Slotted:
        __slots__ = ("n", "unset")

        def __init__(self):
            self.n = 1

    assert _state(Slotted()) == {"n": "1"}


def test_what_the_budget_cut_short_is_never_final():
    assert not words(not_reached(1)).final and not words(probed(status="died")).final
    named = probed(difference={"test": TEST, "what": "x", "read": "x"})
    assert words(named).final and not words(dataclasses.replace(named, unfinished=True)).final
    assert words(probed()).final  # no difference, fully looked at


def test_an_explanation_is_one_of_the_kinds_the_reports_count():
    from gate.steps.explain import Explanation

    with pytest.raises(ValueError, match="unknown kind"):
        Explanation("x", "nameed")
    assert Explanation("x", "named").kind == "named"
