"""`--changed` reads git's diff right whatever the user's git configuration, in the coordinates
of the tree the gate tests, and takes in only tests of the gate's own suite."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gate.changes import changed_lines, plan
from gate.coverage_step import UnitIndex

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
    change = plan(repo, repo, "", ["pkg/store.py"], ["tests/errors"])
    assert change.units == {("pkg/store.py", "load")}


def test_staged_lines_are_read_in_the_working_trees_coordinates(repo):
    weaken_handler(repo)
    git(repo, "add", "pkg/store.py")
    # an unstaged edit above the staged one shifts it down by two lines in the tree the gate tests
    path = repo / "pkg" / "store.py"
    path.write_text("import os\nimport sys\n" + path.read_text())
    change = plan(repo, repo, "", ["pkg/store.py"], ["tests/errors"])
    assert change.lines["pkg/store.py"] >= {7}
    assert ("pkg/store.py", "load") in change.units


def test_only_changed_tests_of_the_gates_suite_are_taken_in(repo):
    for suite in ("errors", "slow"):
        path = repo / "tests" / suite / "test_store.py"
        path.write_text(path.read_text() + "\n\ndef test_more():\n    pass\n")
        git(repo, "add", str(path.relative_to(repo)))
    change = plan(repo, repo, "", ["pkg/store.py"], ["tests/errors", "-m", "not slow"])
    assert change.test_files == {"tests/errors/test_store.py"}
    # a subset keeps the suite's options and never reaches outside it
    assert change.tests_to_run(UnitIndex(tests_by_unit={})) == ("-m", "not slow", "tests/errors/test_store.py")


def test_a_changed_function_no_test_reached_runs_the_whole_suite(repo):
    weaken_handler(repo)
    git(repo, "add", "pkg/store.py")
    change = plan(repo, repo, "", ["pkg/store.py"], ["tests/errors"])
    assert change.tests_to_run(UnitIndex(tests_by_unit={("pkg/store.py", "load"): frozenset()})) is None
