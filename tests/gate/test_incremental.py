"""Cached results are keyed on what can change them (`gate.steps.cache`): a rerun after a small change
tests exactly the mutants whose inputs changed, and never reuses a result it should not."""

from __future__ import annotations

import pytest

from gate.steps.cache import build_cache_keys
from tests.gate.conftest import run_gate
from tests.gate.incremental_runs import BOOK, TESTS, edit, of, rerun
from tests.gate.test_normalised_keys import mutant as make_mutant


@pytest.mark.slow  # eight gate runs; .ci/run runs it
def test_a_rerun_tests_exactly_the_mutants_whose_inputs_changed(fixture_project):
    project = fixture_project("incremental")
    cold = run_gate(project)
    assert cold.exit_code == 0, cold.stdout + cold.stderr
    mutants = cold.mutants()
    assert not any(m["cached"] for m in mutants)
    assert {m["unit"] for m in mutants} == {"parse_amount", "post", "close_book"}

    # a function no other function's tests execute: its own mutants, and none of the others (its
    # docstring is code: `__doc__`; a comment would change nothing, test_normalised_keys)
    edit(project, BOOK, "def close_book(book, sink):\n", 'def close_book(book, sink):\n    """Write, then close."""\n')
    tested, run = rerun(project)
    assert tested == of(run.mutants(), "close_book")
    assert run.summary["counts"]["cached"] == len(run.mutants()) - len(tested) == len(of(mutants, "parse_amount", "post"))

    # a function that `post` calls: its mutants and post's (post's tests execute it); close_book's
    # stay cached although a line added above them moved them down
    edit(project, BOOK, "    try:\n        return int(text)", "    # digits only\n    try:\n        return int(text, 10)")
    tested, run = rerun(project)
    assert tested == of(run.mutants(), "parse_amount", "post")

    # a test: exactly the mutants it covers
    edit(project, TESTS, "    assert sink.written == [0]\n", "    assert sink.written == [0], sink.written\n")
    tested, run = rerun(project)
    covering = {m["name"] for m in run.mutants() if "tests/test_book.py::test_close_book_writes_the_total" in m["tests"]}
    assert covering and tested == covering

    # a module the suite never imports, and documentation: nothing
    edit(project, "tools/export.py", '"csv"', '"tsv"')
    (project / "NOTES.md").write_text("notes\n")
    tested, _ = rerun(project)
    assert tested == set()

    # the module-level code of a guarded file, or a data file the tests may read: everything
    edit(project, BOOK, "class LedgerError(Exception):\n    pass", "class LedgerError(Exception):\n    code = 1")
    tested, run = rerun(project)
    assert tested == {m["name"] for m in run.mutants()}
    (project / "tests" / "amounts.txt").write_text("5\n")
    tested, run = rerun(project)
    assert tested == {m["name"] for m in run.mutants()}


SOURCE = """def helper(x):
    return x + 1 if x else rescue()


def guarded(x):
    try:
        return helper(x)
    except TypeError:
        raise ValueError(fallback(x))


def other():
    return 2


def fallback(x):
    return repr(x)


def opened():
    return 3


def rescue():
    return 5
"""
TEST = """import pytest


def make():
    return 1


@pytest.fixture
def testdata():
    return 1


class TestBase:
    def test_base(self):
        assert True


class TestDerived(TestBase):
    def test_derived(self):
        assert True


def test_guarded(testdata):
    assert make() == testdata


def test_other():
    assert True
"""
COLLECTED = ["t.py::test_guarded", "t.py::test_other", "t.py::TestBase::test_base",
             "t.py::TestDerived::test_derived", "t.py::TestDerived::test_base"]
EXECUTED = {"m.py": {2: ["t.py::test_guarded"], 6: ["t.py::test_guarded"], 7: ["t.py::test_guarded"],
                     13: ["t.py::test_other"]}}
SHARED = {"m.py": [21]}  # opened() runs in a fixture's setup


def key(source=SOURCE, test=TEST, support="s", tests=("t.py::test_guarded",)):
    """The key of a mutant of `guarded`'s handler, whose covering test is test_guarded (the lines
    each test executed follow the source when lines are added above)."""
    shift = source.splitlines().index("def helper(x):")
    executed = {"m.py": {line + shift: tests for line, tests in EXECUTED["m.py"].items()}}
    shared = {"m.py": [line + shift for line in SHARED["m.py"]]}
    cache_keys = build_cache_keys({"m.py": source}, executed, shared, {"t.py": test}, COLLECTED, support,
                                  "settings")
    mutant = make_mutant(source, unit="guarded", old="    except TypeError:\n", new="    except Exception:\n",
                         name="m.x_guarded__mutmut_1")
    return cache_keys.key(mutant, list(tests))


@pytest.mark.parametrize("changed, why", [
    (lambda s, t: (s.replace("x + 1", "x + 2"), t), "a function the covering test executes"),
    (lambda s, t: (s.replace("raise ValueError(fallback(x))", "raise ValueError(fallback(x)) from None"), t),
     "the mutant's own function"),
    (lambda s, t: (s + "LIMIT = 3\n", t), "module-level code"),
    (lambda s, t: (s, t.replace("assert make()", "assert make() == 1")), "the covering test itself"),
    (lambda s, t: (s, t.replace("    return 1\n\n\n@", "    return 2\n\n\n@")), "a helper in the covering test's file"),
    (lambda s, t: (s.replace("repr(x)", "str(x)"), t), "a function the mutant's own function calls, never run"),
    (lambda s, t: (s.replace("return 3", "return 4"), t), "a function run in a fixture's setup"),
    (lambda s, t: (s.replace("return 5", "return 6"), t),
     "a function never run, named in one the covering test executes (a mutant's escaped exception reaches it)"),
    (lambda s, t: (s, t.replace("def testdata():\n    return 1", "def testdata():\n    return 2")),
     "a fixture whose name starts with test"),
])
def test_the_key_changes_with_what_the_mutant_depends_on(changed, why):
    source, test = changed(SOURCE, TEST)
    assert key(source, test) != key(), why


@pytest.mark.parametrize("changed, why", [
    (lambda s, t: (s.replace("return 2", "return 3"), t), "a function no covering test executes"),
    (lambda s, t: ("# a comment above everything\n\n" + s, t), "lines added above the function"),
    (lambda s, t: (s, t.replace("def test_other():\n    assert True", "def test_other():\n    assert 1")),
     "another test of the same file"),
])
def test_the_key_stays_when_nothing_it_depends_on_changed(changed, why):
    source, test = changed(SOURCE, TEST)
    assert key(source, test) == key(), why


def test_the_key_changes_with_the_support_files():
    assert key(support="other") != key()


def test_an_inherited_test_or_one_of_a_derived_class_counts_with_all_test_modules():
    for covering in (("t.py::TestDerived::test_base",), ("t.py::TestDerived::test_derived",)):
        changed = TEST.replace("    def test_base(self):\n        assert True", "    def test_base(self):\n        assert 1")
        assert key(test=changed, tests=covering) != key(tests=covering)
        commented = TEST.replace("    def test_base(self):\n", "    def test_base(self):  # the base's own\n")
        assert key(test=commented, tests=covering) == key(tests=covering)


def test_every_definition_of_a_repeated_name_counts():
    source = SOURCE + """

class Box:
    @property
    def size(self):
        return 1

    @size.setter
    def size(self, value):
        pass
"""
    changed = source.replace("        return 1\n\n    @size.setter", "        return 2\n\n    @size.setter")
    keys = [build_cache_keys({"m.py": text}, {}, {}, {}, [], "s", "x") for text in (source, changed)]
    assert keys[0].units[("m.py", "Box.size")] != keys[1].units[("m.py", "Box.size")]
