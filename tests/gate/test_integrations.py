"""Where the gate is used: `--changed` on a git repository, and the pre-commit hooks run for real
by the `pre-commit` tool in a temporary repository that uses this one's `.pre-commit-hooks.yaml`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gate.conftest import copy_fixture, run_gate

REPO = Path(__file__).resolve().parents[2]
STRONG_TESTS = "tests/test_strong.py"


def git(project: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=project, env=env, capture_output=True, text=True, check=True).stdout


def git_project(tmp_path: Path, fixture: str) -> Path:
    project = copy_fixture(fixture, tmp_path)
    (project / ".gitignore").write_text(".gate/\nreports/\n__pycache__/\n")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "initial")
    return project


def edit(project: Path, rel: str, old: str, new: str) -> None:
    path = project / rel
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_changed_checks_only_the_regions_of_the_staged_function(tmp_path):
    project = git_project(tmp_path, "operators")
    assert run_gate(project).exit_code == 0  # the last full run says which tests executed what
    edit(project, "ops/runner.py", '            self.calls.append("invalid")\n',
         '            self.calls.append("invalid")  # recorded for the caller\n')
    git(project, "add", "ops/runner.py")
    run = run_gate(project, "--changed")
    assert run.exit_code == 0, run.stdout + run.stderr
    # the handler and the raise of Runner.check, and nothing else
    assert {r["id"] for r in run.summary["regions"]} == {"ops/runner.py:34", "ops/runner.py:36"}
    assert {m["region_id"] for m in run.mutants()} == {"ops/runner.py:34", "ops/runner.py:36"}
    assert {m["status"] for m in run.mutants()} == {"killed"}
    assert "note: 5 regions outside this run's scope (--changed)" in run.stdout


def test_changed_with_nothing_staged_has_nothing_to_check(tmp_path):
    project = git_project(tmp_path, "operators")
    run = run_gate(project, "--changed")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert run.mutants() == []
    assert "gate PASSED (exit 0: nothing to check: no error-handling code changed)" in run.stdout


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_changed_against_a_ref_fails_on_a_weakened_test(tmp_path):
    project = git_project(tmp_path, "operators")
    edit(project, STRONG_TESTS, "    assert runner.released == 2\n", "")
    git(project, "commit", "-qam", "weaken")
    run = run_gate(project, "--changed", "HEAD~1")
    assert run.exit_code == 1, run.stdout + run.stderr
    survivors = {(m["operator"], m["original"].strip()) for m in run.mutants() if m["status"] == "survived"}
    assert ("augmented_assignment", "self.released += 1") in survivors


# ----------------------------------------------------------------------------------------------
# pre-commit, for real

needs_pre_commit = pytest.mark.skipif(shutil.which("pre-commit") is None and not (
    Path(sys.executable).parent / "pre-commit").exists(), reason="pre-commit is not installed")


def pre_commit(project: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
           "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture
def hooked_project(tmp_path):
    """A git repository with the operators fixture, using this repository's hooks at its HEAD."""
    project = git_project(tmp_path, "operators")
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.strip()
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {REPO}\n    rev: {rev}\n    hooks:\n      - id: gate-changed\n      - id: gate\n")
    git(project, "add", ".pre-commit-config.yaml")
    git(project, "commit", "-qm", "hooks")
    return project


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
@needs_pre_commit
def test_both_hooks_pass_on_a_clean_checkout(hooked_project, tmp_path):
    commit_stage = pre_commit(hooked_project, tmp_path, "--all-files")
    assert commit_stage.returncode == 0, commit_stage.stdout + commit_stage.stderr
    assert "error-handling gate (staged changes)" in commit_stage.stdout and "Passed" in commit_stage.stdout
    push_stage = pre_commit(hooked_project, tmp_path, "--hook-stage", "pre-push", "--all-files")
    assert push_stage.returncode == 0, push_stage.stdout + push_stage.stderr
    assert "error-handling gate (full)" in push_stage.stdout and "Passed" in push_stage.stdout


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
@needs_pre_commit
def test_commit_hook_fails_on_a_staged_change_that_weakens_a_test(hooked_project, tmp_path):
    edit(hooked_project, STRONG_TESTS, "    assert runner.released == 2\n", "")
    git(hooked_project, "add", STRONG_TESTS)
    result = pre_commit(hooked_project, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error-handling gate (staged changes)" in result.stdout and "Failed" in result.stdout
    assert "survived: ops/runner.py:" in result.stdout and " Runner.release #" in result.stdout


# the gate on its own: no torch, no engine

ENGINE_ONLY = {"torch", "numpy", "safetensors", "tokenizers"}


def test_installing_the_gate_installs_no_engine_dependency():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower() for requirement in project["dependencies"]}
    assert not names & ENGINE_ONLY
    engine = {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in project["optional-dependencies"]["engine"]}
    assert engine == ENGINE_ONLY


@pytest.mark.slow
def test_the_gate_runs_where_torch_cannot_be_imported(tmp_path):
    """A project that wants only the gate has no torch: the gate and mutmut must not need it."""
    hidden = tmp_path / "no-torch"
    for name in ENGINE_ONLY:
        (hidden / name).mkdir(parents=True)
        (hidden / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed here')\n")
    env = {"PYTHONPATH": str(hidden)}
    probe = subprocess.run([sys.executable, "-c", "import torch"], env={**os.environ, **env}, capture_output=True)
    assert probe.returncode == 1 and b"torch is not installed here" in probe.stderr
    project = copy_fixture("strong", tmp_path)
    run = run_gate(project, env=env)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert run.summary["counts"]["by_status"] == {"killed": run.summary["counts"]["selected"]}


@pytest.mark.slow
def test_the_curated_suite_runs_quietly_under_unittest():
    done = subprocess.run([sys.executable, "-m", "unittest", "discover", "-s", "tests/errors", "-t", "."],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    # only unittest's own dots and summary: no slow-step reports of asyncio's debug mode, no engine log records
    noise = [line for line in done.stderr.splitlines()
             if "Executing <Task" in line or "Out of memory on" in line or "shardengine" in line]
    assert noise == []
    assert done.stderr.strip().splitlines()[-1].startswith("OK")
