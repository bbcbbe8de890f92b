"""Never a false pass: every path to a false, stale or unreadable verdict, reproduced through the
real CLI on a fixture project. Each test is named after what the gate must do; the number in each
section is the point of the issue it closes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.gate.conftest import REPO_ROOT, digest_files, run_gate

STORE = "vault/store.py"
TESTS = "tests/test_store.py"
STALE_PASS = {"format_version": 1, "verdict": "passed", "exit_code": 0, "findings": []}


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                   capture_output=True)


def committed(project: Path) -> Path:
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "start")
    return project


def with_stale_reports(project: Path, folder: str = "reports") -> Path:
    """The reports of an earlier, passing run."""
    reports = project / folder
    (reports / "mutation").mkdir(parents=True)
    (reports / "summary.json").write_text(json.dumps(STALE_PASS))
    for stale in ("gate.sarif", "gate-junit.xml", "gate-result.json", "mutation/index.html"):
        (reports / stale).write_text("from the last run")
    return reports


# 1. Early errors leave no earlier run's verdict behind: what CI reads (summary, result, SARIF,
#    JUnit) is this run's error; the pages a reviewer may have open stay, the front page saying
#    they are the earlier run's (tests/gate/test_publish.py)

@pytest.mark.parametrize("args, setup, message", [
    (("--paths", "does/not/exist"), None, "guarded path 'does/not/exist' does not exist"),
    (("--max-workers", "many"), None, "argument --max-workers: invalid int value: 'many'"),
    (("--max-workers", "0"), None, "--max-workers must be an integer >= 1, got 0"),  # named as given
    (("--worker-memory-mb", "-1"), None, "--worker-memory-mb must be an integer >= 0, got -1"),
    ((), ("mutmut_config.py", "guarded_paths = ['vault'\n"), "mutmut_config.py:1: syntax error"),
    # the setting that names the reports folder is itself broken: the default folder gets the verdict
    ((), ("pyproject.toml", '[tool.gate]\ntests = ["tests"]\nreports_dir = 3\n'),
     "[tool.gate] reports_dir must be"),
])
def test_an_early_error_replaces_the_last_runs_reports_with_its_own_verdict(fixture_project, args, setup, message):
    project = fixture_project("strong")
    reports = with_stale_reports(project)
    if setup:
        (project / setup[0]).write_text(setup[1])
    run = run_gate(project, *args)
    assert run.exit_code == 2, run.stdout + run.stderr
    summary = run.summary
    assert (summary["verdict"], summary["exit_code"]) == ("error", 2)
    assert message in summary["findings"][0]["message"]
    assert sorted(p.relative_to(reports).as_posix() for p in reports.rglob("*") if p.is_file()) == [
        "gate-junit.xml", "gate-result.json", "gate.sarif", "mutation/index.html", "summary.json"]
    assert json.loads((reports / "gate-result.json").read_text())["verdict"]["exit_code"] == 2
    assert_stopped_for_ci(reports, 2)
    assert (reports / "mutation/index.html").read_text() == "from the last run"  # a page: kept


def assert_stopped_for_ci(reports: Path, exit_code: int) -> None:
    """The SARIF and JUnit CI reads say the run stopped, with its exit code: never the last run's."""
    [invocation] = json.loads((reports / "gate.sarif").read_text())["runs"][0]["invocations"]
    assert (invocation["executionSuccessful"], invocation["exitCode"]) == (False, exit_code)
    junit = (reports / "gate-junit.xml").read_text()
    assert 'errors="1"' in junit and f'type="exit {exit_code}"' in junit


def test_a_cache_folder_that_cannot_hold_the_lock_still_leaves_this_runs_verdict(fixture_project):
    project = fixture_project("strong")
    reports = with_stale_reports(project)
    (project / "cachefile").write_text("a file where the cache folder should be")
    run = run_gate(project, "--cache-dir", "cachefile")
    assert run.exit_code == 4, run.stdout + run.stderr
    assert (run.summary["verdict"], run.summary["exit_code"]) == ("error", 4)
    assert_stopped_for_ci(reports, 4)


def test_a_folder_that_is_no_project_gets_no_reports(tmp_path):
    done = subprocess.run([sys.executable, "-m", "gate", "--no-such-flag"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == "gate: error [usage]: unrecognized arguments: --no-such-flag"
    assert list(tmp_path.iterdir()) == []


def test_an_early_error_writes_to_the_reports_folder_the_flag_names(fixture_project):
    project = fixture_project("strong")
    reports = with_stale_reports(project, "elsewhere")
    run = run_gate(project, "--reports-dir", "elsewhere", "--paths", "nowhere")
    assert run.exit_code == 2
    assert json.loads((reports / "summary.json").read_text())["verdict"] == "error"
    assert not (project / "reports").exists()


# 2. --changed never shrinks the scope to nothing

def changes_project(fixture_project) -> Path:
    return committed(fixture_project("changes"))


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
@pytest.mark.parametrize("change", ["delete", "rename", "data", "imported"])
def test_a_change_the_plan_cannot_map_to_functions_widens_to_the_whole_gate(fixture_project, change):
    project = changes_project(fixture_project)
    if change == "delete":
        git(project, "rm", "-q", "shop/legacy.py")
    elif change == "rename":
        git(project, "mv", "shop/legacy.py", "shop/old.py")
    elif change == "data":
        (project / "tests/data/prices.json").write_text('{"tea": 3}\n')
    else:
        (project / "pricing/rates.py").write_text("TAX = 0.5\n")
    git(project, "add", "-A")
    run = run_gate(project, "--changed")
    # the whole suite ran, and it is red: each of these changes broke it
    assert run.exit_code == 3, run.stdout + run.stderr
    assert "gate: error [red-suite]: the suite fails on unmutated code: tests/test_orders.py" in run.stderr


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_a_widened_change_says_why_and_checks_every_region(fixture_project):
    project = changes_project(fixture_project)
    (project / "tests/data/prices.json").write_text('{"tea": 2, "coffee": 3}\n')
    git(project, "add", "-A")
    run = run_gate(project, "--changed")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert "note: --changed widened to every region: tests/data/prices.json changed" in run.stdout
    assert run.summary["counts"]["regions"] == 3 and run.summary["counts"]["selected"] > 10


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_a_change_with_nothing_to_check_says_so_and_not_that_mutants_were_killed(fixture_project):
    project = changes_project(fixture_project)
    (project / "NOTES.md").write_text("documentation is not read by the tests\n")
    git(project, "add", "-A")
    run = run_gate(project, "--changed")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert "gate PASSED (exit 0: nothing to check: no error-handling code changed)" in run.stdout
    assert "mutant killed" not in run.stdout
    assert run.summary["nothing_to_check"] == "no error-handling code changed"
    # a shard of a CI matrix with nothing to check still says which shard it is, for the merge
    sharded = run_gate(project, "--changed", "--shard", "2/2")
    assert json.loads((project / "reports" / "gate-result.json").read_text())["shard"] == [2, 2]
    assert sharded.exit_code == 0


def test_guarded_files_without_error_handling_have_nothing_to_check(fixture_project):
    project = fixture_project("strong")
    (project / "vault" / "plain.py").write_text("def add(a, b):\n    return a + b\n")
    run = run_gate(project, "--paths", "vault/plain.py")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert "gate PASSED (exit 0: nothing to check: the guarded files hold no error-handling code)" in run.stdout


def test_the_hooks_run_on_every_commit_not_only_python_ones():
    for name in (".pre-commit-config.yaml", ".pre-commit-hooks.yaml"):
        data = yaml.safe_load((REPO_ROOT / name).read_text())
        hooks = data if isinstance(data, list) else [h for repo in data["repos"] for h in repo["hooks"]]
        assert hooks and all("types" not in h and "files" not in h for h in hooks), name


# 3. A region that gets no mutants is a finding

@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_a_region_whose_mutants_were_all_dropped_fails_unless_accepted(fixture_project):
    project = fixture_project("strong", {STORE: [("            self.close()\n",
                                                  "            self.close()  # pragma: no mutate\n")]})
    run = run_gate(project)
    assert run.exit_code == 1, run.stdout + run.stderr
    assert f"FAIL [1] {STORE}:29 region not mutated: no mutant of finally was kept" in run.stdout
    (project / "mutmut_config.py").write_text(
        "guarded_paths = ['vault']\ncleanup_functions = ['close']\n"
        "accept_unmutated = {'vault/store.py:29': 'close() is tested by test_close_twice_is_harmless'}\n")
    run = run_gate(project)
    assert run.exit_code == 0, run.stdout + run.stderr


# 4. Exception types that cannot be resolved fail the run

# the handler catches a type that only an instance knows
RETRYABLE = [("        self.handle = None\n\n    def load", "        self.handle = None\n        self.retryable = OSError\n\n"
                                                      "    def load"),
             ("except OSError as exc:", "except self.retryable as exc:")]


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_a_caught_type_that_cannot_be_resolved_fails_the_run(fixture_project):
    project = fixture_project("strong", {STORE: RETRYABLE})
    run = run_gate(project)
    assert run.exit_code == 4, run.stdout + run.stderr
    assert (f"FAIL [4] {STORE}:25 cannot resolve the caught type self.retryable in vault.store "
            "(NameError: name 'self' is not defined)") in run.stdout
    (project / "mutmut_config.py").write_text(
        "guarded_paths = ['vault']\ncleanup_functions = ['close']\n"
        "accept_unmutated = {'vault/store.py:Store.load': 'the retryable type is set per instance'}\n")
    run = run_gate(project)
    assert run.exit_code == 0, run.stdout + run.stderr


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_the_merge_keeps_each_shards_unresolved_types(fixture_project, tmp_path):
    project = fixture_project("strong", {STORE: RETRYABLE})
    for k in (1, 2):
        shard = run_gate(project, "--shard", f"{k}/2", "--reports-dir", f"shard{k}")
        assert shard.exit_code == 4, shard.stdout + shard.stderr
        # as on a machine of its own: one shard's reports are no file of the tree the next one runs on
        shutil.move(project / f"shard{k}", tmp_path / f"shard{k}")
    done = subprocess.run([sys.executable, "-m", "gate", "merge", str(tmp_path / "shard1/gate-result.json"),
                           str(tmp_path / "shard2/gate-result.json")], cwd=project, capture_output=True, text=True)
    assert done.returncode == 4, done.stdout + done.stderr
    assert f"FAIL [4] {STORE}:25 cannot resolve the caught type self.retryable in vault.store" in done.stdout


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_a_guarded_module_that_cannot_be_imported_fails_the_run(fixture_project):
    project = fixture_project("strong", {STORE: [
        ("import logging\n", "import logging\nimport os\n\nif os.environ.get('VAULT_READY') != '1':\n"
                             "    raise ImportError('vault needs its test setup')\n")]})
    (project / "tests" / "conftest.py").write_text("import os\n\nos.environ['VAULT_READY'] = '1'\n")
    run = run_gate(project)
    assert run.exit_code == 4, run.stdout + run.stderr
    assert (f"FAIL [4] {STORE}: cannot resolve the caught types: importing vault.store failed: "
            "ImportError: vault needs its test setup") in run.stdout


# 5. Every job comes back with an outcome; pytest's own errors are never kills: tests/gate/test_faults.py
#    (test_a_mutant_that_interrupts_pytest_is_an_error_not_a_kill) and tests/gate/test_outcomes.py


# 6. Unknown names in mutmut_config.py

@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_an_unknown_setting_in_the_policy_is_a_config_error(fixture_project):
    project = fixture_project("strong")
    allowed = ("import os\n_private = 1\nos.environ['VAULT_MODE'] = 'test'\n\n\ndef helper():\n    return 1\n\n\n"
               "guarded_paths = ['vault']\ncleanup_functions = ['close']\n")
    (project / "mutmut_config.py").write_text(allowed + "paths = ['vault']\n")
    run = run_gate(project)
    assert run.exit_code == 2, run.stdout + run.stderr
    assert run.stderr.startswith("gate: error [config]: mutmut_config.py:12: unknown setting 'paths' (known: ")
    (project / "mutmut_config.py").write_text(allowed)
    assert run_gate(project, "--only-coverage").exit_code == 0


# 7. Shards: each writes its result whatever stopped it, and the merge names each one's cause

@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_the_merge_reports_each_shards_own_exit_code_and_reason(fixture_project, tmp_path):
    red = fixture_project("strong", {TESTS: [('assert store.load("k") == "v"', 'assert store.load("k") == "w"')]})
    first = run_gate(red, "--shard", "1/2")
    assert first.exit_code == 3
    second = run_gate(fixture_project("operators"), "--shard", "2/2", "--paths", "missing")
    assert second.exit_code == 2
    done = subprocess.run([sys.executable, "-m", "gate", "merge", "--reports-dir", "merged",
                           str(red / "reports" / "gate-result.json"), str(second.project / "reports" / "gate-result.json")],
                          cwd=red, capture_output=True, text=True)
    assert done.returncode == 2, done.stdout + done.stderr  # the most serious of 3 and 2
    assert "FAIL [3] shard 1/2 stopped with exit 3: [red-suite] the suite fails on unmutated code" in done.stdout
    assert "FAIL [2] shard 2/2 stopped with exit 2: [config] guarded path 'missing' does not exist" in done.stdout
    assert json.loads((red / "merged" / "summary.json").read_text())["exit_code"] == 2


def test_the_workflow_uploads_every_shards_result_and_always_merges():
    workflow = yaml.safe_load((REPO_ROOT / ".github/workflows/gate.yml").read_text())
    shard_steps = workflow["jobs"]["gate"]["steps"]
    assert not any("|| true" in step.get("run", "") for step in shard_steps)
    assert all(step.get("if") == "always()" for step in shard_steps
               if step.get("uses", "").startswith("actions/upload-artifact"))
    assert workflow["jobs"]["verdict"]["if"] == "always()"


# 8. A src/ layout installed for development: the snapshot is what runs

def editable_python(tmp_path: Path, src: Path) -> Path:
    """A Python whose site-packages holds an editable install of `src` (the `.pth` file that
    `pip install -e .` writes) and sees everything this one has installed."""
    venv = tmp_path / "editable-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [site] = (venv / "lib").glob("python3*/site-packages")
    parents = [p for p in sys.path if p.endswith("site-packages")]
    (site / "_parent.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in parents))
    (site / "__editable__.vault.pth").write_text(f"{src}\n")
    return venv / "bin" / "python"


def src_layout(fixture_project) -> Path:
    project = fixture_project("strong")
    (project / "src").mkdir()
    (project / "vault").rename(project / "src" / "vault")
    (project / "mutmut_config.py").write_text("guarded_paths = ['src/vault']\ncleanup_functions = ['close']\n")
    return project


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_an_editable_src_layout_install_measures_the_snapshot(fixture_project, tmp_path):
    project = src_layout(fixture_project)
    python = editable_python(tmp_path, project / "src")
    editable = run_gate(project, python=python, env={"PYTHONPATH": None})
    assert editable.exit_code == 0, editable.stdout + editable.stderr
    counts = editable.summary["counts"]
    assert counts["by_status"] == {"killed": counts["selected"]} and counts["selected"] > 20
    shutil.rmtree(project / ".gate")
    # (no address-space limit here: a flag a GPU machine needs, and one that changes no verdict)
    with_pythonpath = run_gate(project, "--worker-memory-mb", "0", env={"PYTHONPATH": str(project / "src")})
    assert with_pythonpath.exit_code == 0, with_pythonpath.stdout + with_pythonpath.stderr
    assert with_pythonpath.summary["counts"] == counts
    assert [r["tests"] for r in with_pythonpath.summary["regions"]] == [r["tests"] for r in editable.summary["regions"]]


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_a_guarded_module_imported_from_outside_the_snapshot_fails_the_run(fixture_project):
    project = src_layout(fixture_project)
    (project / "tests" / "conftest.py").write_text(
        "import os\nimport sys\n\nsys.path.insert(0, os.environ['VAULT_HOME'])\n")
    run = run_gate(project, env={"VAULT_HOME": str(project / "src")})
    assert run.exit_code == 4, run.stdout + run.stderr
    assert (f"gate: error [infrastructure]: the suite imported vault from {project / 'src/vault/__init__.py'}, "
            "outside the gate's snapshot") in run.stderr
    assert not (project / ".gate" / "coverage" / "measurement.json").exists()  # nothing that measured nothing is cached


# 9. The cache is keyed on what changes imports

@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_a_changed_pythonpath_is_not_served_from_the_cache(fixture_project, tmp_path):
    project = fixture_project("strong", {TESTS: [("def test_close_twice_is_harmless():\n",
                                                  "def test_close_twice_is_harmless():\n    import flag\n"
                                                  "    assert flag.OK\n")]})
    for name, ok in (("good", True), ("bad", False)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "flag.py").write_text(f"OK = {ok}\n")
    assert run_gate(project, env={"PYTHONPATH": str(tmp_path / "good")}).exit_code == 0
    run = run_gate(project, env={"PYTHONPATH": str(tmp_path / "bad")})
    assert run.exit_code == 3, run.stdout + run.stderr
    assert "test_close_twice_is_harmless" in run.stderr


# 10. A mutant on a continuation line is reached by the tests that run its statement

@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_a_mutant_on_a_continuation_line_is_tested(fixture_project):
    # coverage.py records the statement under its first line; the second part of an implicitly
    # concatenated string has no line event of its own
    project = fixture_project("strong", {STORE: [('raise StoreError("cannot read") from exc',
                                                  'raise StoreError(\n                "cannot "\n'
                                                  '                "read"\n            ) from exc')]})
    run = run_gate(project)
    assert run.exit_code == 0, run.stdout + run.stderr
    on_line_29 = [m for m in run.mutants() if m["start"] == 29]
    assert {m["replacement"].strip() for m in on_line_29} == {'"XXreadXX"', '"READ"'}
    assert {m["status"] for m in on_line_29} == {"killed"}


# 11. Test ids that change between runs

@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_test_ids_that_change_between_runs_still_run(fixture_project):
    project = fixture_project("strong", {TESTS: [
        ("import logging\n", "import datetime\nimport logging\n"),
        ("def test_read_error_counts_logs_closes_and_chains(caplog):",
         "@pytest.mark.parametrize('stamp', [datetime.datetime.now().isoformat()])\n"
         "def test_read_error_counts_logs_closes_and_chains(caplog, stamp):")]})
    run = run_gate(project)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert all(len(line) < 400 for line in (run.stdout + run.stderr).splitlines())


# 12. A moved project (or a restored cache) is valid or rebuilt, never misread

@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_a_moved_project_passes_against_its_own_cache(fixture_project, tmp_path):
    project = fixture_project("strong")
    first = run_gate(project)
    assert first.exit_code == 0, first.stdout + first.stderr
    moved = tmp_path / "moved"
    shutil.copytree(project, moved, symlinks=True)
    before = digest_files(moved)
    run = run_gate(moved)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert run.summary["counts"]["by_status"] == first.summary["counts"]["by_status"]
    # the measurement is rebuilt where the project now lies; the mutants' results hold no paths and stay
    assert run.summary["counts"]["cached"] == run.summary["counts"]["selected"]
    assert digest_files(moved) == before
    # mutants that must run again run in the moved copy, and the verdict is still true
    path = moved / TESTS
    path.write_text(path.read_text().replace("    assert store.failures == 2\n", ""))
    weakened = run_gate(moved)
    assert weakened.exit_code == 1, weakened.stdout + weakened.stderr
    assert [m["operator"] for m in weakened.mutants() if m["status"] == "survived"] == ["augmented_assignment"]
