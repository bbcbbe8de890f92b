"""`--changed` reads git's diff right whatever the user's git configuration, in the coordinates
of the tree the gate tests, and takes in only tests of the gate's own suite."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gate.steps.scope import UnitIndex, changed_lines, read_change

MODULE = '''\
def load(key):
    try:
        return open(key).read()
    except OSError:
        raise KeyError(key)


def save(key, value):
    return None
'''


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "tests" / "errors").mkdir(parents=True)
    (root / "tests" / "slow").mkdir(parents=True)
    (root / "pkg" / "store.py").write_text(MODULE)
    for suite in ("errors", "slow"):
        (root / "tests" / suite / "test_store.py").write_text("def test_load():\n    assert True\n")
    git(root, "init", "-q")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start")
    return root


def weaken_handler(root: Path) -> None:
    path = root / "pkg" / "store.py"
    path.write_text(path.read_text().replace("        raise KeyError(key)", "        pass"))


def test_a_configured_diff_prefix_does_not_hide_the_change(repo):
    git(repo, "config", "diff.mnemonicPrefix", "true")
    git(repo, "config", "diff.noprefix", "false")
    weaken_handler(repo)
    git(repo, "add", "pkg/store.py")
    assert changed_lines(repo, "") == {"pkg/store.py": {5}}
    change = read_change(repo, repo, "", ["pkg/store.py"], ["tests/errors"])
    assert change.units == {("pkg/store.py", "load")}


def test_staged_lines_are_read_in_the_working_trees_coordinates(repo):
    weaken_handler(repo)
    git(repo, "add", "pkg/store.py")
    # an unstaged edit above the staged one shifts it down by two lines in the tree the gate tests
    path = repo / "pkg" / "store.py"
    path.write_text("import os\nimport sys\n" + path.read_text())
    change = read_change(repo, repo, "", ["pkg/store.py"], ["tests/errors"])
    assert change.lines["pkg/store.py"] >= {7}
    assert ("pkg/store.py", "load") in change.units


def test_only_changed_tests_of_the_gates_suite_are_taken_in(repo):
    for suite in ("errors", "slow"):
        path = repo / "tests" / suite / "test_store.py"
        path.write_text(path.read_text() + "\n\ndef test_more():\n    pass\n")
        git(repo, "add", str(path.relative_to(repo)))
    change = read_change(repo, repo, "", ["pkg/store.py"], ["tests/errors", "-m", "not slow"])
    assert change.test_files == {"tests/errors/test_store.py"}
    # a subset keeps the suite's options and never reaches outside it
    assert change.tests_to_run(UnitIndex(tests_by_unit={})) == ("-m", "not slow", "tests/errors/test_store.py")


def test_a_changed_function_no_test_reached_runs_the_whole_suite(repo):
    weaken_handler(repo)
    git(repo, "add", "pkg/store.py")
    change = read_change(repo, repo, "", ["pkg/store.py"], ["tests/errors"])
    assert change.tests_to_run(UnitIndex(tests_by_unit={("pkg/store.py", "load"): frozenset()})) is None


def test_what_the_plan_cannot_map_to_functions_widens_it_and_says_why(repo):
    (repo / "pkg" / "rates.py").write_text("TAX = 1\n")
    (repo / "tests" / "data.json").write_text("{}\n")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "more")
    git(repo, "mv", "pkg/store.py", "pkg/storage.py")
    (repo / "pkg" / "rates.py").write_text("TAX = 2\n")
    (repo / "tests" / "data.json").write_text('{"a": 1}\n')
    (repo / "NOTES.md").write_text("prose\n")
    (repo / "tests" / "slow" / "test_store.py").write_text("def test_load():\n    assert 1\n")
    git(repo, "add", "-A")
    change = read_change(repo, repo, "", ["pkg/storage.py"], ["tests/errors"])  # rates.py is not guarded
    # a rename is a deletion and an addition; documentation and tests outside the suite never widen
    assert change.widened == ("pkg/store.py was deleted", "pkg/rates.py changed", "tests/data.json changed")
    assert change.everything and change.tests_to_run(UnitIndex(tests_by_unit={})) is None


def test_against_a_ref_an_untracked_file_counts_as_changed(repo):
    (repo / "pkg" / "refunds.py").write_text("def refund():\n    raise ValueError\n")
    (repo / "conftest.py").write_text("")
    change = read_change(repo, repo, "HEAD", ["pkg/store.py", "pkg/refunds.py"], ["tests/errors"])
    assert ("pkg/refunds.py", "refund") in change.units
    assert change.widened == ("conftest.py changed",)
    # the staged changes are what a commit holds: untracked files are no part of it
    assert read_change(repo, repo, "", ["pkg/store.py", "pkg/refunds.py"], ["tests/errors"]).units == frozenset()
