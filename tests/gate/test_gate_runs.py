"""The gate run for real (`python -m gate` as a subprocess) on small fixture projects.

Each test names the behaviour it shows and asserts the exit code, what the gate said, and that
the project's own files are byte-identical afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gate.operators import OPERATORS
from tests.gate.conftest import digest_files, run_gate

STORE = "vault/store.py"
TESTS = "tests/test_store.py"


def test_fully_tested_project_passes(fixture_project):
    project = fixture_project("strong")
    before = digest_files(project)
    run = run_gate(project)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert "gate PASSED" in run.stdout
    summary = run.summary
    assert summary["verdict"] == "passed"
    assert summary["counts"]["regions"] == 5
    assert summary["counts"]["by_status"] == {"killed": summary["counts"]["selected"]}
    assert summary["counts"]["selected"] > 20
    # the handler's own statements (lines 25-27: count, log, raise), not its `except` line
    [handler] = [r for r in summary["regions"] if r["id"] == f"{STORE}:24"]
    assert (handler["coverage"]["statements_run"], handler["coverage"]["statements"]) == (3, 3)
    assert summary["coverage"]["statements_percent"] == 100.0
    assert digest_files(project) == before


def test_deleting_one_assertion_lets_a_mutant_survive_and_names_it(fixture_project):
    project = fixture_project("strong", {TESTS: [("    assert store.failures == 2\n", "")]})
    before = digest_files(project)
    run = run_gate(project)
    assert run.exit_code == 1, run.stdout + run.stderr
    survivors = [m for m in run.mutants() if m["status"] == "survived"]
    assert [(m["operator"], m["replacement"].strip()) for m in survivors] == [
        ("augmented_assignment", "self.failures = 1")]
    name = survivors[0]["name"]
    assert name.startswith("vault.store.xǁStoreǁload__mutmut_")
    assert f"survived: {STORE}:25 Store.load #{name.rsplit('__mutmut_', 1)[1]} (augmented_assignment)" in run.stdout
    assert "-            self.failures += 1\n    +            self.failures = 1" in run.stdout  # its diff
    assert digest_files(project) == before


def test_handler_no_test_enters_fails_the_gate(fixture_project):
    # the two tests that make a read fail with OSError are no longer collected
    project = fixture_project("strong", {TESTS: [("def test_read_error_counts", "def _read_error_counts"),
                                                 ("def test_failures_accumulate", "def _failures_accumulate")]})
    run = run_gate(project, "--only-coverage")
    assert run.exit_code == 1, run.stdout + run.stderr
    assert f"{STORE}:24 handler never entered (except OSError)" in run.stdout
    # the `except` line ran (an exception was checked against it), but no statement of the handler did
    [handler] = [r for r in run.summary["regions"] if r["id"] == f"{STORE}:24"]
    assert (handler["coverage"]["statements_run"], handler["coverage"]["statements"]) == (0, 3)
    assert f"{STORE}:27 raise never executed (raise StoreError)" in run.stdout


def test_red_suite_exits_3_and_names_the_failing_test(fixture_project):
    project = fixture_project("strong", {TESTS: [('assert store.load("k") == "v"', 'assert store.load("k") == "w"')]})
    before = digest_files(project)
    # a passing run's reports from before: none may outlive the run that replaces them
    (project / "reports" / "mutation").mkdir(parents=True)
    for stale in ("gate.sarif", "gate-junit.xml", "gate-result.json", "mutation/index.html"):
        (project / "reports" / stale).write_text("from the last run")
    (project / "reports" / "README.md").write_text("the user's own")
    run = run_gate(project)
    assert run.exit_code == 3, run.stdout + run.stderr
    assert "gate: error [red-suite]: the suite fails on unmutated code: " \
           "tests/test_store.py::test_load_returns_data_and_closes" in run.stderr
    assert (run.summary["verdict"], run.summary["exit_code"]) == ("error", 3)  # CI still reads a verdict
    left = sorted(p.relative_to(project / "reports").as_posix() for p in (project / "reports").rglob("*"))
    # this run's own verdict files, nothing else: its SARIF and JUnit say it stopped
    assert left == ["README.md", "gate-junit.xml", "gate-result.json", "gate.sarif", "summary.json"]
    assert 'type="exit 3"' in (project / "reports" / "gate-junit.xml").read_text()
    [invocation] = json.loads((project / "reports" / "gate.sarif").read_text())["runs"][0]["invocations"]
    assert (invocation["executionSuccessful"], invocation["exitCode"]) == (False, 3)
    assert digest_files(project) == before


def test_an_unexpected_error_fails_closed_with_one_line(fixture_project, tmp_path):
    project = fixture_project("strong")
    before = digest_files(project)
    # a bug in the gate, planted in its own process only (sitecustomize runs before `-m gate`)
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "sitecustomize.py").write_text(
        "from gate.steps import regions\n\n\ndef find_all(*args, **kwargs):\n"
        "    raise RuntimeError('a bug planted by the test')\n\n\nregions.find_all = find_all\n")
    run = run_gate(project, env={"PYTHONPATH": str(planted)})
    assert run.exit_code == 4, run.stdout + run.stderr
    [line] = run.stderr.splitlines()
    assert line.startswith("gate: error [internal]: unexpected RuntimeError: a bug planted by the test")
    traceback_file = Path(line.split("(traceback in ", 1)[1].rstrip(")"))
    assert "RuntimeError: a bug planted by the test" in traceback_file.read_text()
    assert (run.summary["verdict"], run.summary["exit_code"]) == ("error", 4)
    assert digest_files(project) == before


@pytest.mark.parametrize("config, message", [
    ("guarded_paths = ['vault'\n", "mutmut_config.py:1: syntax error: '[' was never closed"),
    ("guarded_paths = 'vault'\n", "mutmut_config.py: guarded_paths must be a list of non-empty strings, "
                                  "got 'vault'"),
    ("import os\nos.environ['X']\n", "mutmut_config.py:2: KeyError: 'X'"),
    ("timeout_counts_as = 'maybe'\n", "mutmut_config.py: timeout_counts_as must be one of 'killed', "
                                      "'survived', got 'maybe'"),
    ("cleanup_function = ['close']\n", "mutmut_config.py:1: unknown setting 'cleanup_function' "
                                       "(did you mean 'cleanup_functions'?; names starting with _ are private)"),
    ("operators = ['swallow', 'explode']\n", "mutmut_config.py: operators has an unknown operator 'explode' "
                                             f"(known: {', '.join(OPERATORS)})"),
    # a policy that ends the process, even "successfully", must not end the run with exit 0
    ("import sys\nsys.exit(0)\n", "mutmut_config.py:2: SystemExit: 0"),
])
def test_broken_policy_file_exits_2_naming_the_problem(fixture_project, config, message):
    project = fixture_project("strong")
    (project / "mutmut_config.py").write_text(config)
    before = digest_files(project)
    run = run_gate(project)
    assert digest_files(project) == before
    assert run.exit_code == 2, run.stdout + run.stderr
    assert run.stderr.strip() == f"gate: error [config]: {message}"


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
@pytest.mark.parametrize("body, raised", [("raise RuntimeError('boom')", "RuntimeError: boom"),
                                          ("import sys; sys.exit(0)", "SystemExit: 0")])
def test_hook_that_raises_is_a_config_error(fixture_project, body, raised):
    project = fixture_project("strong")
    (project / "mutmut_config.py").write_text(
        "guarded_paths = ['vault']\ncleanup_functions = ['close']\n"
        f"def pre_mutation(context):\n    {body}\n")
    run = run_gate(project)
    assert run.exit_code == 2, run.stdout + run.stderr
    assert f"gate: error [config]: mutmut_config.py: pre_mutation raised {raised} (for vault.store." \
           in run.stderr


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_policy_hook_that_skips_a_mutant_is_honoured(fixture_project):
    # without the failures assertion the `+= -> =` mutant survives; the hook skips it with a reason
    project = fixture_project("strong", {TESTS: [("    assert store.failures == 2\n", "")]})
    (project / "mutmut_config.py").write_text(
        "guarded_paths = ['vault']\ncleanup_functions = ['close']\n"
        "def pre_mutation(context):\n"
        "    if context.operator == 'augmented_assignment' and 'failures' in context.current_source_line:\n"
        "        context.skip = 'the failure count is a best-effort statistic'\n")
    run = run_gate(project)
    assert run.exit_code == 0, run.stdout + run.stderr
    skipped = [m for m in run.mutants() if m["status"] == "skipped"]
    assert [(m["operator"], m["detail"]) for m in skipped] == [
        ("augmented_assignment", "the failure count is a best-effort statistic")]
    assert run.summary["counts"]["by_status"]["skipped"] == 1


def test_bad_tool_gate_setting_exits_2_naming_it(fixture_project):
    project = fixture_project("strong", {"pyproject.toml": [('tests = ["tests"]', 'tests = ["tests"]\nmax_workers = 0')]})
    run = run_gate(project)
    assert run.exit_code == 2
    assert run.stderr.strip() == "gate: error [config]: [tool.gate] max_workers must be an integer >= 1, got 0"


def test_a_misspelt_speed_lever_fails_before_anything_runs(fixture_project):
    project = fixture_project("strong")
    run = run_gate(project, env={"GATE_LEVERS_OFF": "kept-session,prelaod"})
    assert run.exit_code == 2
    assert run.stderr.strip() == ("gate: error [config]: GATE_LEVERS_OFF names unknown levers prelaod (known: "
                                  "preload, freeze, kept-session, line-tests, killer-first, measurement-split)")
    assert not (project / ".gate" / "work").exists()


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_second_run_with_nothing_changed_reruns_nothing(fixture_project):
    project = fixture_project("strong")
    first = run_gate(project)
    assert first.exit_code == 0, first.stdout + first.stderr
    second = run_gate(project)
    assert second.exit_code == 0
    counts = second.summary["counts"]
    assert counts["cached"] == counts["selected"] == first.summary["counts"]["selected"]
    assert "mutants" not in second.summary["timings"] or second.summary["timings"]["mutants"] < 0.5


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_weakened_test_reruns_the_mutants_it_covers_and_fails(fixture_project):
    project = fixture_project("strong")
    assert run_gate(project).exit_code == 0
    path = project / TESTS
    path.write_text(path.read_text().replace("    assert store.failures == 2\n", ""))
    run = run_gate(project)
    assert run.exit_code == 1, run.stdout + run.stderr
    assert [m["operator"] for m in run.mutants() if m["status"] == "survived"] == ["augmented_assignment"]


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_region_mutmut_cannot_mutate_fails_by_default(fixture_project):
    run = run_gate(fixture_project("decorated"))
    assert run.exit_code == 1, run.stdout + run.stderr
    assert ("cache/lookup.py:22 region not mutated: Lookup.get is decorated with @traced, which mutmut skips "
            "(list it in safe_decorators if it only wraps calls)") in run.stdout
    assert run.mutants() == []


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_region_not_mutated_can_be_accepted_knowingly(fixture_project):
    project = fixture_project("decorated")
    (project / "mutmut_config.py").write_text(
        "guarded_paths = ['cache']\naccept_unmutated = {'cache/lookup.py:Lookup.get': 'traced is a test double'}\n")
    run = run_gate(project)
    assert run.exit_code == 0, run.stdout + run.stderr
    [region] = run.summary["regions"]
    assert region["not_mutated"].startswith("Lookup.get is decorated with @traced")
    assert region["accepted"] == "traced is a test double"
    assert run.mutants() == []


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_safe_decorator_is_mutated_through(fixture_project):
    project = fixture_project("decorated")
    (project / "mutmut_config.py").write_text("guarded_paths = ['cache']\nsafe_decorators = ['traced']\n")
    run = run_gate(project)
    assert run.exit_code == 0, run.stdout + run.stderr
    operators = {m["operator"] for m in run.mutants()}
    assert {"swallow", "reraise", "reset-delete", "unreachable", "broaden"} <= operators
    assert {m["status"] for m in run.mutants()} == {"killed"}


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_policy_chooses_the_gate_operators(fixture_project):
    project = fixture_project("strong")
    policy = "guarded_paths = ['vault']\ncleanup_functions = ['close']\noperators = ['swallow']\n"
    (project / "mutmut_config.py").write_text(policy)
    run = run_gate(project)
    # only cleanup-call-delete mutates the finally body's `self.close()`: without it nothing checks it
    assert run.exit_code == 1, run.stdout + run.stderr
    assert f"FAIL [1] {STORE}:29 region not mutated: no mutant of finally was kept" in run.stdout
    (project / "mutmut_config.py").write_text(
        policy + "accept_unmutated = {'vault/store.py:29': 'close() has its own tests'}\n")
    run = run_gate(project)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert {m["operator"] for m in run.mutants() if m["origin"] == "gate"} == {"swallow"}
    assert any(m["origin"] == "mutmut" for m in run.mutants())


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_src_layout_project_passes(fixture_project):
    project = fixture_project("strong")
    (project / "src").mkdir()
    (project / "vault").rename(project / "src" / "vault")
    (project / "mutmut_config.py").write_text("guarded_paths = ['src/vault']\ncleanup_functions = ['close']\n")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.pytest.ini_options]\npythonpath = ["src"]\n')
    run = run_gate(project)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert {m["file"] for m in run.mutants()} == {"src/vault/store.py"}
    assert run.summary["counts"]["by_status"] == {"killed": run.summary["counts"]["selected"]}


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_a_test_that_fails_only_under_mutmuts_trampolines_is_a_red_suite(fixture_project):
    # the only test of the TypeError raise passes on the real code, and fails on every mutant of
    # load() for a reason that is not the mutation (a trampoline is another function): no kill of it counts
    project = fixture_project("strong", {TESTS: [
        ('    assert str(info.value) == "key must be a str"\n',
         '    assert str(info.value) == "key must be a str"\n    assert Store.load.__code__.co_name == "load"\n')]})
    before = digest_files(project)
    run = run_gate(project)
    assert run.exit_code == 3, run.stdout + run.stderr
    assert run.stderr.strip() == ("gate: error [red-suite]: the suite fails on unmutated code under mutmut's "
                                  "trampolines: tests/test_store.py::test_bad_key_is_rejected_before_opening")
    assert digest_files(project) == before
