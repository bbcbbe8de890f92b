"""Result keys hash what the code means, not its text (`gate.steps.cache`): a comment, a blank line,
a statement wrapped over lines or re-indented re-runs nothing; a docstring, an annotation, a local's
name, a constant or a decorator re-runs what depends on it. The mutant's own part is its function as
mutated, so no line number and no context line of its diff is in the key."""

from __future__ import annotations

import ast
import difflib
import re

import pytest

from gate.result import Mutant
from gate.steps.cache import build_cache_keys, mutated_code
from tests.gate.conftest import run_gate
from tests.gate.incremental_runs import BOOK, TESTS, edit, of, rerun

SOURCE = '''import functools


def helper(x: int) -> int:
    """Add one."""
    step = 1
    return x + step


class Store:
    @functools.lru_cache(maxsize=None)
    def load(self, key: str) -> int:
        """Load a key."""
        value = 0
        try:
            value = helper(len(key))
        except TypeError:
            raise ValueError(describe(key, "bad key"))
        except KeyError:
            raise ValueError(describe(key, "bad key"))
        return value


def describe(key, why):
    return f"{why}: {key}"
'''
TEST = '''from m import Store


def make():
    return Store()


def test_load():
    store = make()
    assert store.load("ab") == 3


def test_other():
    assert True
'''
UNIT, OLD, NEW = "Store.load", "        except TypeError:\n", "        except Exception:\n"


def mutant(source, unit=UNIT, old=OLD, new=NEW, nth=0, name="m.xǁStoreǁload__mutmut_1"):
    """The mutant the adapter makes (`gate.mutmut_adapter.mutate._describe`): the `nth` `old` of
    `unit`'s lines, from its `def` line, replaced by `new`; its diff in the file's line numbers."""
    node = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                and n.name == unit.rpartition(".")[2])
    lines = source.splitlines(keepends=True)
    before = lines[node.lineno - 1:node.end_lineno]
    text = "".join(before)
    at = -1
    for _ in range(nth + 1):
        at = text.index(old, at + 1)
    after = (text[:at] + new + text[at + len(old):]).splitlines(keepends=True)
    changes = [op for op in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes() if op[0] != "equal"]
    a_start, a_end, b_start, b_end = changes[0][1], max(changes[-1][2], changes[0][1] + 1), changes[0][3], changes[-1][4]
    diff = "".join(difflib.unified_diff(before, after, fromfile="original", tofile="mutant", n=2))
    offset = node.lineno - 1
    diff = re.sub(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@",
                  lambda m: f"@@ -{int(m[1]) + offset}{m[2] or ''} +{int(m[3]) + offset}{m[4] or ''} @@", diff, flags=re.M)
    return Mutant(name=name, file="m.py", unit=unit, operator="op", origin="gate", start=node.lineno + a_start,
                  end=node.lineno + a_end - 1, original="".join(before[a_start:a_end]).rstrip("\n"),
                  replacement="".join(after[b_start:b_end]).rstrip("\n"), diff=diff)


def keys(source=SOURCE, test=TEST):
    """The run's cache keys: test_load executed `helper` and `Store.load` (wherever their lines are now)."""
    lines = source.splitlines()
    executed = {"m.py": {i + 1: ["t.py::test_load"] for i, line in enumerate(lines) if line.strip() in
                         {"value = 0", "value = helper(len(key))", "step = 1", "return x + step"}}}
    return build_cache_keys({"m.py": source}, executed, {}, {"t.py": test}, ["t.py::test_load", "t.py::test_other"],
                            "support", "settings")


def key(source=SOURCE, test=TEST, **change):
    return keys(source, test).key(mutant(source, **change), ["t.py::test_load"])


def test_the_mutants_function_is_rebuilt_from_the_file_and_its_diff():
    rebuilt = mutated_code(tuple(SOURCE.split("\n")), keys().unit_spans[("m.py", UNIT)], mutant(SOURCE))
    expected = ast.parse(SOURCE.replace("except TypeError", "except Exception")).body[2].body[0]
    assert rebuilt == ast.dump(expected, include_attributes=False)
    assert keys().change(mutant(SOURCE)).startswith("code\0")


LAYOUT = [
    (lambda s: s.replace(OLD, "        # the argument's type is wrong\n" + OLD), "a comment above the mutated line"),
    (lambda s: s.replace('raise ValueError(describe(key, "bad key"))\n        except KeyError',
                         'raise ValueError(describe(key, "bad key"))  # why\n        except KeyError'),
     "a comment inside the handler"),
    (lambda s: s.replace("        value = 0\n", "        value = 0\n\n"), "a blank line in the mutant's function"),
    (lambda s: s.replace('raise ValueError(describe(key, "bad key"))\n        except KeyError',
                         'raise ValueError(\n                describe(key, "bad key"),\n            )\n'
                         '        except KeyError'), "the handler's statement wrapped over lines, a trailing comma"),
    (lambda s: s.replace("value = helper(len(key))", "value = (helper(\n                len(key)))"),
     "a statement in the try body wrapped, in parentheses"),
    (lambda s: s.replace("value = helper(len(key))", "value = (helper(\n                len(key)))")
     .replace("                len(key)))", "                        len(key)))"), "a continuation line re-indented"),
    (lambda s: s.replace("    step = 1\n", "    step = 1  # one\n\n"), "a comment and a blank line in a called function"),
    (lambda s: s.replace("import functools\n", "import functools  # for the cache\n\n\n# helpers\n"),
     "comments in the module-level code"),
    (lambda s: "# a header\n\n" + s, "lines added above everything"),
]


@pytest.mark.parametrize("changed, why", LAYOUT, ids=[why for _, why in LAYOUT])
def test_a_layout_change_keeps_the_key(changed, why):
    source = changed(SOURCE)
    assert source != SOURCE
    assert keys(source).change(mutant(source)).startswith("code\0"), "rebuilt, not keyed on its text"
    assert key(source) == key(), why


MEANING = [
    (lambda s: s.replace('"""Load a key."""', '"""Load one key."""'), "the docstring of the mutant's function"),
    (lambda s: s.replace('"""Add one."""', '"""Add 1."""'), "the docstring of a function it calls"),
    (lambda s: s.replace("def load(self, key: str) -> int:", "def load(self, key: bytes) -> int:"),
     "an annotation of the mutant's function"),
    (lambda s: s.replace("def helper(x: int) -> int:", "def helper(x: int) -> float:"),
     "a return annotation of a function it calls"),
    (lambda s: s.replace("value", "result"), "a renamed local"),
    (lambda s: s.replace("step = 1", "step = 2"), "a changed constant in a function it calls"),
    (lambda s: s.replace("lru_cache(maxsize=None)", "lru_cache(maxsize=2)"), "a changed decorator"),
    (lambda s: s.replace('describe(key, "bad key"))\n        except KeyError', 'describe(key, "no key"))\n'
                         '        except KeyError'), "a constant in the mutated handler"),
    (lambda s: s.replace("import functools\n", "import functools\nLIMIT = 3\n"), "module-level code"),
    (lambda s: s.replace('return f"{why}: {key}"', 'return f"{why}; {key}"'), "a function the mutant calls, never run"),
]


@pytest.mark.parametrize("changed, why", MEANING, ids=[why for _, why in MEANING])
def test_a_change_of_meaning_changes_the_key(changed, why):
    source = changed(SOURCE)
    assert source != SOURCE
    assert key(source) != key(), why


def test_an_annotation_counts_under_postponed_annotations():
    future = "from __future__ import annotations\n" + SOURCE
    assert key(future) != key()
    assert key(future.replace("key: str", "key: bytes")) != key(future)
    assert key(future.replace("key: str", "key:   str")) == key(future)


def test_the_mutant_itself_is_in_the_key():
    assert key(new="        except BaseException:\n") != key(), "another replacement"
    assert key(old="        except KeyError:\n", new="        except Exception:\n") != key(), "the same change elsewhere"
    twice = SOURCE.replace("except KeyError", "except TypeError")
    assert key(twice) != key(twice, nth=1), "the same change of the same text, at its second place"
    assert keys().key(mutant(SOURCE, name="m.xǁStoreǁload__mutmut_2"), ["t.py::test_load"]) != key(), "its name"


def test_a_definition_moved_past_module_code_changes_the_key():
    moved = SOURCE.replace("import functools\n", "import functools\nHELPER = helper\n", 1)
    after = SOURCE + "HELPER = helper\n"
    assert key(moved) != key(after)
    # the functions themselves kept their code; what the module binds first changed
    assert keys(moved).units == keys(after).units


def test_a_diff_that_is_not_the_files_falls_back_to_the_text():
    """A mutant whose diff does not read as the file's lines (a method's multi-line string, which
    the adapter's printing indents) is keyed on its diff and its function's text, as before."""
    stale = mutant(SOURCE)
    stale = Mutant(**{**stale.__dict__, "diff": stale.diff.replace("helper(len(key))", "helper(key)")})
    assert mutated_code(tuple(SOURCE.split("\n")), keys().unit_spans[("m.py", UNIT)], stale) is None
    commented = SOURCE.replace("        value = 0\n", "        value = 0  # start\n")
    assert keys().change(stale).startswith("text\0")
    assert keys(commented).key(stale, ["t.py::test_load"]) != keys().key(stale, ["t.py::test_load"])
    assert keys().key(stale, ["t.py::test_load"]) != key()


def test_a_function_that_no_longer_parses_alone_falls_back_to_the_text():
    broken = mutant(SOURCE, new="        except TypeError\n")
    assert keys().change(broken).startswith("text\0")


@pytest.mark.parametrize("changed, same, why", [
    (lambda t: t.replace('    assert store.load("ab") == 3\n', '    # three letters\n    assert store.load("ab") == 3\n'),
     True, "a comment in the covering test"),
    (lambda t: t.replace('assert store.load("ab") == 3', 'assert store.load(\n        "ab",\n    ) == 3'), True,
     "the covering test's assertion wrapped"),
    (lambda t: t.replace("    return Store()\n", "    return Store()  # a fresh one\n\n"), True,
     "a comment in a helper of the test module"),
    (lambda t: t.replace('assert store.load("ab") == 3', 'assert store.load("ab") >= 3'), False,
     "the covering test's assertion changed"),
    (lambda t: t.replace("def make():\n    return Store()", "def make():\n    return Store() or None"), False,
     "a helper of the test module changed"),
    (lambda t: t.replace("def test_other():\n    assert True", "def test_other():\n    assert 1"), True,
     "another test changed"),
])
def test_a_tests_key_follows_its_code(changed, same, why):
    test = changed(TEST)
    assert test != TEST
    assert (key(test=test) == key()) is same, why


# real gate runs on the `incremental` fixture: how many mutants each kind of edit re-runs

@pytest.mark.slow  # six gate runs
def test_a_gate_rerun_after_a_layout_change_runs_nothing(fixture_project):
    project = fixture_project("incremental")
    cold = run_gate(project)
    assert cold.exit_code == 0, cold.stdout + cold.stderr
    everything = {m["name"] for m in cold.mutants()}

    # a comment inside a handler, and the handler's statement re-wrapped: nothing re-runs
    edit(project, BOOK, '        raise LedgerError(f"not an amount: {text}") from exc',
         '        # the caller counts it\n        raise LedgerError(\n            f"not an amount: {text}",\n'
         '        ) from exc')
    edit(project, BOOK, '        book["rejected"] += 1\n', '        book["rejected"] += 1  # counted once\n\n')
    edit(project, TESTS, "    assert sink.written == [0]\n", "    # the total so far\n    assert sink.written == [0]\n")
    tested, run = rerun(project)
    assert tested == set(), tested
    assert run.summary["counts"]["cached"] == len(everything)

    # a docstring: that function's mutants (and those of the functions whose tests execute it)
    edit(project, BOOK, "def close_book(book, sink):\n", 'def close_book(book, sink):\n    """Write and close."""\n')
    tested, run = rerun(project)
    assert tested == of(run.mutants(), "close_book"), tested
    assert run.summary["counts"]["cached"] == len(everything) - len(tested)

    # one statement of parse_amount: its mutants and post's, which calls it
    edit(project, BOOK, "        return int(text)", "        return int(text, 10)")
    tested, run = rerun(project)
    assert tested == of(run.mutants(), "parse_amount", "post"), tested
    assert run.summary["counts"]["cached"] == len(of(run.mutants(), "close_book"))


def test_a_methods_multi_line_string_as_the_adapter_prints_it_is_still_rebuilt():
    """The adapter prints a method with its class's indent added to every line, a docstring's
    continuation lines too: such a context line still anchors the hunk (the file's line is kept),
    a removed line must read exactly as the file's."""
    source = SOURCE.replace('"""Load a key."""\n        value = 0', '"""Load a key.\n\n        Or fail.\n        """\n'
                            '        value = 0')
    old, new = "        value = 0\n", "        value = None\n"
    plain = mutant(source, old=old, new=new)
    printed = Mutant(**{**plain.__dict__, "diff": plain.diff.replace("\n         Or fail.\n", "\n             Or fail.\n")
                        .replace('\n         """\n', '\n             """\n')})
    assert printed.diff != plain.diff
    assert keys(source).change(printed) == keys(source).change(plain)
    assert keys(source).change(plain).startswith("code\0")
    indented_removal = Mutant(**{**plain.__dict__, "diff": plain.diff.replace("-        value = 0", "-            value = 0")})
    assert keys(source).change(indented_removal).startswith("text\0")
