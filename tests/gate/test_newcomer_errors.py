"""What a newcomer meets first, each a real run where one is cheap: `--changed` outside git, a run
from a subfolder, a held lock after waiting, a misspelt setting or flag, an `@override` method,
and the commit hook on a machine whose PATH has `python3` but no `python`. Each error is one line
and its exit code, and nothing of the project is written or lost."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gate.errors import ConfigError, LockedError
from gate.lock import exclusive
from gate.mutmut_adapter.client import unmutatable_reason
from gate.policy import DEFAULT_SAFE_DECORATORS, IDENTITY_DECORATORS
from gate.settings import find_root, git_toplevel, load_settings
from gate.steps.regions import regions_of_source
from gate.steps.scope import changed_lines
from tests.gate.conftest import REPO_ROOT, copy_fixture, digest_files, run_gate
from tests.gate.test_integrations import git, git_project, needs_pre_commit


def gate(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m gate ARGS` started in `cwd`, as a user types it (no --project)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_CORE", "COVERAGE"))}
    return subprocess.run([sys.executable, "-m", "gate", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture
def plain_project(tmp_path):
    """The operators fixture in a folder that is no git repository."""
    project = copy_fixture("operators", tmp_path)
    assert git_toplevel(project) is None, "the temporary folder lies in a git repository"
    return project


# 5. --changed outside a git repository

def test_changed_outside_a_git_repository_is_one_line_exit_2(plain_project):
    before = digest_files(plain_project)
    done = gate(plain_project, "--changed")
    assert done.returncode == 2
    assert done.stderr == f"gate: error [config]: --changed needs a git repository: {plain_project} is not inside one\n"
    assert done.stdout == ""
    assert digest_files(plain_project) == before
    assert not (plain_project / ".gate").exists()  # refused before the snapshot


def test_changed_lines_outside_a_repository_says_so(tmp_path):
    with pytest.raises(ConfigError) as raised:
        changed_lines(tmp_path, "")
    assert str(raised.value) == f"--changed needs a git repository: {tmp_path} is not inside one"


def test_an_unknown_ref_is_git_s_first_complaint_only(tmp_path):
    project = git_project(tmp_path, "operators")
    with pytest.raises(ConfigError) as raised:
        changed_lines(project, "no-such-ref")
    assert str(raised.value) == ("--changed: git diff failed: fatal: ambiguous argument 'no-such-ref': unknown "
                                 "revision or path not in the working tree.")


# 7. the project root, found upwards

def test_a_run_from_a_subfolder_finds_the_root_above_and_says_so(plain_project):
    before = digest_files(plain_project)
    from_root = gate(plain_project, "--list-regions")
    from_sub = gate(plain_project / "ops", "--list-regions")
    assert (from_root.returncode, from_sub.returncode) == (0, 0), from_sub.stderr
    assert from_root.stderr == ""
    assert from_sub.stderr == f"gate: project root {plain_project} (pyproject.toml with [tool.gate])\n"
    assert from_sub.stdout == from_root.stdout and "Runner.step" in from_sub.stdout
    assert digest_files(plain_project) == before


def test_project_dir_is_where_the_search_starts(plain_project, tmp_path):
    done = gate(tmp_path, "--project", str(plain_project / "ops"), "--list-regions")
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"gate: project root {plain_project} (pyproject.toml with [tool.gate])\n"
    assert load_settings(plain_project / "tests").root == plain_project


def test_subcommands_find_the_root_too(plain_project):
    done = gate(plain_project / "ops", "adopt")
    assert done.returncode == 2
    assert done.stderr == (f"gate: project root {plain_project} (pyproject.toml with [tool.gate])\n"
                           "gate: error [config]: set adoption_file in [tool.gate] to the file to write "
                           "(like \"gate-adopted.json\")\n")


def test_the_root_search_order(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.gate]\ntests = ['t']\n")  # above the repository
    repo = tmp_path / "repo"
    (repo / "pkg" / "deep").mkdir(parents=True)
    git(repo, "init", "-q")
    # nothing in the repository: its top level, not the [tool.gate] above it
    assert find_root(repo / "pkg" / "deep") == (repo, "the git top level")
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert find_root(repo / "pkg" / "deep") == (repo, "pyproject.toml")
    (repo / "pkg" / "mutmut_config.py").write_text("guarded_paths = ['deep']\n")
    assert find_root(repo / "pkg" / "deep") == (repo / "pkg", "mutmut_config.py")
    (repo / "pkg" / "deep" / "pyproject.toml").write_text("[tool.gate]\n")
    assert find_root(repo / "pkg" / "deep") == (repo / "pkg" / "deep", "pyproject.toml with [tool.gate]")
    # outside git the search goes on upwards; a folder with nothing anywhere above is its own root
    outside = tmp_path / "elsewhere" / "sub"
    outside.mkdir(parents=True)
    assert find_root(outside) == (tmp_path, "pyproject.toml with [tool.gate]")


# 10a. a held lock, after waiting

def test_a_held_lock_says_how_long_it_waited_and_who_holds_it(tmp_path):
    cache = tmp_path / ".gate"
    with exclusive(cache, 0):
        with pytest.raises(LockedError) as waited:
            with exclusive(cache, 0.3):
                pass
        with pytest.raises(LockedError) as at_once:
            with exclusive(cache, 0):
                pass
    assert str(waited.value) == (f"another gate run (pid {os.getpid()}) still holds {cache} after waiting 0.3 s "
                                 "for it; wait for it to finish or pass a longer --lock-timeout")
    assert str(at_once.value) == (f"another gate run (pid {os.getpid()}) is using {cache}; wait for it to finish "
                                  "or pass --lock-timeout SECONDS")


def test_a_run_that_waited_for_the_lock_says_so(plain_project):
    (plain_project / ".gate").mkdir()
    before = digest_files(plain_project)
    with exclusive(plain_project / ".gate", 0):  # this test process is the other run
        done = gate(plain_project, "-q", "--lock-timeout", "1")
    assert done.returncode == 4, done.stdout + done.stderr
    assert done.stderr == (f"gate: error [locked]: another gate run (pid {os.getpid()}) still holds "
                           f"{plain_project / '.gate'} after waiting 1 s for it; wait for it to finish or pass "
                           "a longer --lock-timeout\n")
    assert digest_files(plain_project) == before
    assert not (plain_project / "reports").exists()  # the reports are the other run's


# 10b. a misspelt [tool.gate] key

def test_a_misspelt_tool_gate_key_gets_did_you_mean(plain_project):
    pyproject = plain_project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("tests = ", "test = "))
    before = digest_files(plain_project)
    done = gate(plain_project, "-q")
    assert done.returncode == 2
    assert done.stderr == "gate: error [config]: [tool.gate] unknown setting 'test' (did you mean 'tests'?)\n"
    assert digest_files(plain_project) == before


def test_a_tool_gate_key_like_none_lists_the_known_ones(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.gate]\nflavour = 1\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(tmp_path)
    assert str(raised.value).startswith("[tool.gate] unknown setting 'flavour' (known: tests, pytest_args, ")


# 10c. a misspelt flag

@pytest.mark.parametrize(("args", "message"), [
    (["--chnaged"], "unrecognized arguments: --chnaged (did you mean --changed?)"),
    (["--chnaged=HEAD"], "unrecognized arguments: --chnaged=HEAD (did you mean --changed?)"),
    (["--lock-timout", "5"], "unrecognized arguments: --lock-timout (did you mean --lock-timeout?) 5"),
    (["sugest", "x"], "unrecognized arguments: sugest (did you mean suggest?) x"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["merge", "a.json", "--reports-dri", "r"],
     "unrecognized arguments: --reports-dri (did you mean --reports-dir?) r"),
])
def test_a_misspelt_flag_gets_did_you_mean(tmp_path, args, message):
    done = gate(tmp_path, *args)  # a folder that is no project: nothing is written
    assert done.returncode == 2
    assert done.stderr == f"gate: error [usage]: {message}\n"
    assert list(tmp_path.iterdir()) == []


# 14. decorators that return the function itself need no configuration

DECORATED = '''\
try:
    from typing import override
except ImportError:
    from typing_extensions import override
import typing as t
import typing_extensions
from typing import final as sealed
from mylib import final
import functools


def other():
    pass


class Lookup:
    @override
    def a(self):
        raise KeyError

    @t.final
    def b(self):
        raise KeyError

    @typing_extensions.override
    def c(self):
        raise KeyError

    @sealed
    @typing_extensions.final
    def d(self):
        raise KeyError

    @final
    def e(self):
        raise KeyError

    @functools.wraps(other)
    def f(self):
        raise KeyError


class Shadowed:
    override = staticmethod(lambda function: function)

    @override
    def g(self):
        raise KeyError
'''


def test_identity_decorators_are_safe_by_what_they_are_imported_as():
    regions = {r.unit: r for r in regions_of_source(DECORATED, "m.py") if r.unit}
    shown = {unit: region.unit_decorators for unit, region in regions.items()}
    assert shown == {"Lookup.a": ("typing.override",), "Lookup.b": ("typing.final",),
                     "Lookup.c": ("typing_extensions.override",),
                     "Lookup.d": ("typing.final", "typing_extensions.final"), "Lookup.e": ("final",),
                     "Lookup.f": ("functools.wraps(other)",), "Shadowed.g": ("override",)}
    # whatever the policy lists: the identity decorators are no wrapping it could get wrong
    for safe in (DEFAULT_SAFE_DECORATORS, ("traced",), ()):
        reasons = {unit: unmutatable_reason(region, safe) for unit, region in regions.items()}
        assert {unit for unit, reason in reasons.items() if reason is None} == {
            "Lookup.a", "Lookup.b", "Lookup.c", "Lookup.d"}
    assert unmutatable_reason(regions["Lookup.e"], ()) == (
        "Lookup.e is decorated with @final, which mutmut skips (list it in safe_decorators if it only wraps calls)")
    assert unmutatable_reason(regions["Shadowed.g"], ()) == (
        "Shadowed.g is decorated with @override, which mutmut skips (list it in safe_decorators if it only "
        "wraps calls)")


def test_the_identity_decorators_return_the_function_itself():
    import typing

    import typing_extensions

    modules = {"typing": typing, "typing_extensions": typing_extensions}
    for qualified in IDENTITY_DECORATORS:
        module, name = qualified.split(".")
        if not hasattr(modules[module], name):  # typing.override is Python 3.12's
            continue

        def function():
            pass

        assert getattr(modules[module], name)(function) is function, qualified


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_an_override_method_is_mutated_without_configuration(fixture_project):
    project = fixture_project("overridden")
    assert "safe_decorators" not in (project / "mutmut_config.py").read_text()
    before = digest_files(project)
    run = run_gate(project)
    assert run.exit_code == 0, run.stdout + run.stderr
    [region] = run.summary["regions"]
    assert (region["id"], region["not_mutated"]) == ("cache/lookup.py:21", None)
    operators = {m["operator"] for m in run.mutants()}
    assert {"swallow", "reraise", "reset-delete", "unreachable", "broaden"} <= operators
    assert {m["status"] for m in run.mutants()} == {"killed"}
    assert digest_files(project) == before


# 8. the commit hook where the PATH has python3 but no python

def _bin(folder: Path, python3: str) -> str:
    """A real PATH: `python3` (a script running `python3`'s command), git and sh, and no `python`."""
    folder.mkdir()
    script = folder / "python3"
    script.write_text(f"#!/bin/sh\nexec {python3} \"$@\"\n")
    script.chmod(0o755)
    path = os.pathsep.join([str(folder), *sorted({str(Path(shutil.which(tool)).parent) for tool in ("git", "sh")})])
    assert shutil.which("python", path=path) is None, f"{path} has a python"
    return path


def _hooked(tmp_path: Path) -> Path:
    """A second git repository whose .pre-commit-config.yaml uses this checkout's hooks manifest
    (committed into a repository of its own: pre-commit clones hooks at a commit)."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    shutil.copy(REPO_ROOT / ".pre-commit-hooks.yaml", hooks)
    shutil.copytree(REPO_ROOT / "hooks", hooks / "hooks")  # the entry script, its mode kept
    git(hooks, "init", "-q", "-b", "main")
    git(hooks, "add", "-A")
    git(hooks, "commit", "-qm", "hooks")
    rev = git(hooks, "rev-parse", "HEAD").strip()
    project = git_project(tmp_path, "operators")
    (project / ".pre-commit-config.yaml").write_text(yaml.safe_dump(
        {"repos": [{"repo": str(hooks), "rev": rev, "hooks": [{"id": "gate-changed"}]}]}))
    git(project, "add", ".pre-commit-config.yaml")
    git(project, "commit", "-qm", "use the hooks")
    return project


def _pre_commit(project: Path, tmp_path: Path, path: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_CORE", "COVERAGE", "VIRTUAL_ENV"))}
    env.update(PATH=path, PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"))
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # pre-commit clones the hooks and runs the gate: .ci/run runs it
@needs_pre_commit
def test_the_hook_runs_where_only_python3_is_on_the_path(tmp_path):
    project = _hooked(tmp_path)
    before = digest_files(project)
    ok = _pre_commit(project, tmp_path, _bin(tmp_path / "bin", sys.executable))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "error-handling gate (staged changes)" in ok.stdout and "Passed" in ok.stdout
    # a python3 without the gate (no site-packages): one line naming it and what to activate
    bare = tmp_path / "bare"
    missing = _pre_commit(project, tmp_path, _bin(bare, f"{sys.executable} -S"))
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert "- exit code: 2" in missing.stdout
    assert (f"\ngate: error [config]: the gate is not installed for {bare / 'python3'}: activate the environment "
            "your tests run in, where shardgate is installed, and run again\n") in missing.stdout
    assert digest_files(project) == before
