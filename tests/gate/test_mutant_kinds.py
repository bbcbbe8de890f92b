"""What a mutation changes beyond its diff (`gate.mutmut_adapter.mutant_kinds`): the same bytecode
as the original, no run-time effect at all, or only a raised exception's message."""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
import pytest
from libcst.metadata import MetadataWrapper, ParentNodeProvider

from gate.mutmut_adapter.mutant_kinds import (
    NO_RUNTIME_EFFECT,
    SAME_AS_ORIGINAL,
    bytecode,
    message_only,
    without_runtime_effect,
)
from gate.steps.selection import MESSAGE_OFF
from tests.gate.conftest import run_gate


def test_dead_code_compiles_away_so_its_mutants_are_the_original():
    original = "def f(x):\n    if False:\n        log('never')\n    return x + 1\n"
    assert bytecode(original.replace("'never'", "'XXneverXX'")) == bytecode(original)
    assert bytecode(original.replace("x + 1", "x - 1")) != bytecode(original)
    # line numbers and comments are not code
    assert bytecode("\n\n" + original.replace("return", "# why\n    return")) == bytecode(original)


def test_constants_of_another_type_are_another_program():
    assert bytecode("def f():\n    return 1\n") != bytecode("def f():\n    return 1.0\n")
    assert bytecode("def f():\n    return 1\n") != bytecode("def f():\n    return True\n")
    assert bytecode("def f(:\n") is None


@pytest.mark.parametrize("original, mutant", [
    ("g(x=1)", "g(y=1)"),  # a keyword's name (3.11: KW_NAMES, whose argval dis leaves UNKNOWN)
    ("g(x=1, y=2)", "g(y=1, x=2)"),  # the order of keywords
    ("dict(ok=False)", "dict(okXX=False)"),
    ("g(a)", "h(a)"),  # a global's name
    ("o.a", "o.b"),  # an attribute's name
    ("o.m(a)", "o.n(a)"),  # a method's name
    ("a", "b"),  # a local's name
    ("a + 1", "a - 1"),  # an operator
    ("a < 1", "a <= 1"),  # a comparison
    ("a is None", "a is not None"),  # an identity test, its sense
    ("a in b", "a not in b"),  # a membership test, its sense
    ("f'{a!r}'", "f'{a!s}'"),  # a conversion of a formatted value
    ("(lambda: 1)()", "(lambda: 2)()"),  # the code of a nested function
    ("1", "'1'"),  # a constant's type
    ("(1, 2)", "(2, 1)"),  # a constant tuple
])
def test_a_mutant_that_differs_in_any_operand_is_kept(original, mutant):
    """For each kind of operand the comparison reads by value rather than by index (constants,
    names, locals, operators, flags, nested code), a pair that differs only there compiles apart."""
    def function(expression: str) -> str:
        return f"def f(a, b, o):\n    return {expression}\n"

    assert bytecode(function(original)) != bytecode(function(mutant))
    assert bytecode(function(original)) == bytecode("\n" + function(original))  # the same program is the same


def test_a_free_variables_name_is_read_too():
    outer = "def f():\n    x = y = 1\n    def g():\n        return {}\n    return g\n"
    assert bytecode(outer.format("x")) != bytecode(outer.format("y"))


def test_a_default_value_is_part_of_the_definition():
    assert bytecode("def f(x=1):\n    return x\n") != bytecode("def f(x=2):\n    return x\n")


def nodes(source: str, matcher: m.BaseMatcherNode):
    wrapper = MetadataWrapper(cst.parse_module(source), unsafe_skip_copy=True)
    parents = wrapper.resolve(ParentNodeProvider)
    return m.findall(wrapper.module, matcher), parents


def test_annotations_and_the_type_given_to_cast_have_no_run_time_effect():
    source = ("from typing import cast\n\n"
              "def f(path: 'Path') -> 'Config':\n"
              "    return cast('Config', read(path, 'rb'))\n")
    strings, parents = nodes(source, m.SimpleString())
    effect = {s.value: without_runtime_effect(s, s, parents) for s in strings}
    assert effect == {"'Path'": True, "'Config'": True, "'rb'": False}
    [call], parents = nodes(source, m.Call(func=m.Name("cast")))
    as_none = call.with_changes(args=[call.args[0].with_changes(value=cst.Name("None")), call.args[1]])
    without_type = call.with_changes(args=[call.args[1]])
    assert without_runtime_effect(call, as_none, parents)
    assert not without_runtime_effect(call, without_type, parents)  # cast(x) raises TypeError


def test_only_the_text_of_a_raised_exceptions_one_argument_is_message_only():
    source = ("def f(x, code):\n"
              "    log('loading')\n"
              "    raise LoadError(f'cannot load {x}') from None\n"
              "    raise LoadError('cannot read ' + x)\n"
              "    raise OSError(2, 'missing')\n"
              "    raise SystemExit(code + 1)\n")
    strings, parents = nodes(source, m.SimpleString() | m.FormattedString() | m.Integer())
    kinds = {cst.Module([]).code_for_node(s): message_only(s, s, parents) for s in strings}
    assert kinds == {"'loading'": False, "f'cannot load {x}'": True, "'cannot read '": True,
                     "2": False, "'missing'": False, "1": False}
    # an operator in the message can change the exception itself (a TypeError): not message-only
    [plus], parents = nodes(source, m.BinaryOperation(operator=m.Add(), left=m.SimpleString()))
    assert not message_only(plus, plus.with_changes(operator=cst.Subtract()), parents)


def test_removing_the_one_message_is_message_only_removing_an_argument_of_several_is_not():
    source = "def f(x):\n    raise LoadError('cannot load')\n    raise PathError('cannot load', x)\n"
    [one], parents = nodes(source, m.Call(func=m.Name("LoadError")))
    assert message_only(one, one.with_changes(args=[]), parents)
    assert message_only(one, one.with_changes(args=[one.args[0].with_changes(value=cst.Name("None"))]), parents)
    [two], parents = nodes(source, m.Call(func=m.Name("PathError")))
    assert not message_only(two, two.with_changes(args=[two.args[1]]), parents)  # x moves into args[0]


def test_cast_means_typing_cast_given_a_type_that_cannot_fail():
    source = ("import typing\n\ndef f(buf, types, i):\n"
              "    a = typing.cast('Config', buf)\n"
              "    b = memoryview(buf).cast('B')\n"
              "    c = cast(types[i + 1], buf)\n")
    strings, parents = nodes(source, m.SimpleString() | m.Integer())
    effect = {cst.Module([]).code_for_node(s): without_runtime_effect(s, s, parents) for s in strings}
    assert effect == {"'Config'": True, "'B'": False, "1": False}


@pytest.mark.parametrize("imports, call, inert", [
    ("from typing import cast", "cast('T', v)", True),
    ("from typing import cast as as_type", "as_type('T', v)", True),
    ("import typing_extensions as te", "te.cast('T', v)", True),
    ("from typing_extensions import cast", "cast('T', v)", True),
    ("", "cast('T', v)", False),  # a name bound by nothing in the module
    ("from sqlalchemy import cast", "cast('T', v)", False),
    ("from .convert import cast", "cast('T', v)", False),
    ("from typing import cast\ncast = convert", "cast('T', v)", False),  # rebound: another cast
    ("from typing import cast\ndef cast(kind, value):\n    return value", "cast('T', v)", False),
    ("import sqlalchemy as typing", "typing.cast('T', v)", False),
    ("import numpy as t", "t.cast('T', v)", False),
])
def test_only_a_name_that_resolves_to_typing_cast_is_cast(imports, call, inert):
    source = f"{imports}\n\ndef f(v):\n    return {call}\n"
    [string], parents = nodes(source, m.SimpleString(value="'T'"))
    assert without_runtime_effect(string, string, parents) is inert


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_equivalent_mutants_are_dropped_counted_and_never_fail_the_gate(fixture_project):
    run = run_gate(fixture_project("equivalents"))
    assert run.exit_code == 0, run.stdout + run.stderr
    counts = run.summary["counts"]
    assert counts["equivalent_dropped"] == 7
    assert counts["equivalent_by_reason"] == {NO_RUNTIME_EFFECT: 3, SAME_AS_ORIGINAL: 4}
    assert "7 equivalent mutants dropped" in run.stdout
    shown = {m["replacement"].strip() for m in run.mutants()}
    assert not {'print("XXunreachableXX")', 'reason: "XXstrXX" = cast("str", exc.strerror)',
                'reason: "str" = cast(None, exc.strerror)'} & shown
    # the message of the raise is mutated, tested and counted apart
    assert counts["message_only"] == 4 and counts["message_only_by_status"] == {"killed": 4}
    assert "4 of them message-only" in run.stdout


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_the_policy_can_turn_message_only_mutants_off(fixture_project):
    project = fixture_project("equivalents", {"mutmut_config.py": [('guarded_paths = ["conf"]',
                                                                     'guarded_paths = ["conf"]\nmessage_mutants = False')]})
    run = run_gate(project)
    assert run.exit_code == 0, run.stdout + run.stderr
    skipped = [m for m in run.mutants() if m["status"] == "skipped"]
    assert len(skipped) == 4 and all(m["message_only"] and m["detail"] == MESSAGE_OFF for m in skipped)
    assert run.summary["counts"]["message_only_by_status"] == {"skipped": 4}


def test_message_mutants_must_be_true_or_false(fixture_project):
    project = fixture_project("equivalents", {"mutmut_config.py": [('guarded_paths = ["conf"]',
                                                                     'guarded_paths = ["conf"]\nmessage_mutants = "no"')]})
    run = run_gate(project)
    assert run.exit_code == 2
    assert run.stderr.strip() == "gate: error [config]: mutmut_config.py: message_mutants must be True or False, got 'no'"
