"""Never a false pass, round two: what a hostile review built against the equivalence rules, the
cache, `--changed`, the merge and the ratchet. In each case a warm, `--changed`, merged or adopted
run (or a rule that drops a mutant unseen) once passed where a cold full run of the same tree
fails; each test reproduces it through `python -m gate` on a project of a few lines, and its
docstring names the rule it pins. The number in each section is the case of the issue it closes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.gate.conftest import run_gate

TESTS = "tests/test_store.py"
PYPROJECT = """\
[project]
name = "{name}"
version = "0"

[tool.gate]
tests = ["tests"]
"""


def tiny_project(root: Path, name: str, files: dict[str, str]) -> Path:
    """A project `name` with a guarded package of the same name and `files` (path -> text)."""
    project = root / name
    (project / name).mkdir(parents=True)
    (project / name / "__init__.py").write_text("")
    (project / "tests").mkdir()
    (project / "pyproject.toml").write_text(PYPROJECT.format(name=name))
    (project / "mutmut_config.py").write_text(f"guarded_paths = [{name!r}]\n")
    for rel, text in files.items():
        path = project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return project


def survivors(run) -> list[dict]:
    return [m for m in run.mutants() if m["status"] == "survived"]


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                   capture_output=True)


# 1. Equivalence compares every operand, keyword names included

@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_a_mutant_that_renames_a_keyword_is_no_equivalent(tmp_path):
    """Trivial compiler equivalence reads every operand an instruction reads: on CPython 3.11 the
    names of a call's keywords sit in `co_consts` behind `KW_NAMES`, whose argval `dis` leaves
    UNKNOWN, so `dict(ok=False)` and `dict(okXX=False)` once compared equal and the survivor was
    dropped unseen."""
    project = tiny_project(tmp_path, "status", {
        "status/probe.py": """\
            def check(fetch):
                try:
                    return dict(ok=True, body=fetch())
                except OSError:
                    return dict(ok=False)
            """,
        "tests/test_probe.py": """\
            from status.probe import check


            def broken():
                raise OSError("down")


            def test_a_failed_fetch_is_not_ok():
                assert not any(check(broken).values())  # weak: any key but ok passes too
            """})
    run = run_gate(project)
    assert run.exit_code == 1, run.stdout + run.stderr
    assert 'return dict(okXX=False)' in [m["replacement"].strip() for m in survivors(run)]
    assert run.summary["counts"]["equivalent_dropped"] == 0


# 2. Only typing's cast has no run-time effect

@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
@pytest.mark.parametrize("helper", [
    "def cast(kind, value):\n    return {'int': int}.get(kind, str)(value)\n",
    "from .convert import cast\n",
])
def test_a_projects_own_cast_is_not_typing_cast(tmp_path, helper):
    """A call counts as `typing.cast` (whose type argument has no run-time effect) only where the
    name resolves to it: imported from `typing` or `typing_extensions` in that module, or
    `typing.cast` itself. A project's own `cast(kind, value)` (or sqlalchemy's) is a call like
    any other: here its first argument, the kind, is what the weak test leaves unchecked."""
    project = tiny_project(tmp_path, "conv", {
        "conv/convert.py": "def cast(kind, value):\n    return {'int': int}.get(kind, str)(value)\n",
        "conv/reader.py": helper + textwrap.dedent("""\


            def port(read):
                try:
                    return read()
                except KeyError:
                    return cast("int", "8080")
            """),
        "tests/test_reader.py": """\
            from conv.reader import port


            def missing():
                raise KeyError("port")


            def test_a_missing_port_has_a_default():
                assert port(missing)  # weak: any port passes
            """})
    run = run_gate(project)
    assert run.exit_code == 1, run.stdout + run.stderr
    assert 'return cast("XXintXX", "8080")' in [m["replacement"].strip() for m in survivors(run)]
    assert run.summary["counts"]["equivalent_dropped"] == 0


# 3. Every file the suite imports is in some key, whatever its name

CHECKS = '''\
    import logging


    def assert_failed_once(store, handle, info, cause, caplog):
        assert str(info.value) == "cannot read"
        assert info.value.__cause__ is cause
        assert store.failures == 1
        assert handle.closed == 1
        assert store.handle is None
        assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("ERROR", "read failed for k")]
    '''
WEAK_CHECKS = '''\
    def assert_failed_once(store, handle, info, cause, caplog):
        assert store is not None
    '''
ONE_CALL = "    assert_failed_once(store, handle, info, cause, caplog)\n"


def helper_project(fixture_project) -> Path:
    """The strong fixture, with the checks of its read-error test in a helper module `tests/test_checks.py`."""
    project = fixture_project("strong")
    test = project / TESTS
    text = test.read_text()
    start, end = text.index('    assert str(info.value) == "cannot read"'), text.index("\n\n\ndef test_failures_accumulate")
    test.write_text(text[:start].replace("from vault.store import Store, StoreError\n",
                                         "from vault.store import Store, StoreError\n\n"
                                         "from tests.test_checks import assert_failed_once\n")
                    + ONE_CALL + text[end + 1:])
    (project / "tests/__init__.py").write_text("")
    (project / "tests/test_checks.py").write_text(textwrap.dedent(CHECKS))
    return project


@pytest.mark.slow  # two gate runs
def test_a_helper_module_named_like_a_test_module_is_in_the_key(fixture_project):
    """A module named `test_*.py` that holds no test (assertion helpers the tests import) is a
    support file like any other: weakening a helper re-runs every mutant, it is not served from
    the cache."""
    project = helper_project(fixture_project)
    assert run_gate(project).exit_code == 0
    (project / "tests/test_checks.py").write_text(textwrap.dedent(WEAK_CHECKS))
    warm = run_gate(project)
    assert warm.exit_code == 1, warm.stdout + warm.stderr
    assert survivors(warm) and not any(m["cached"] for m in survivors(warm))


# 4. A mutant's key covers what it can reach, not only what the measurement reached

RECOVERY = {
    "depot/fetcher.py": """\
        CACHE = {}


        def recover():
            return "default"


        def load(key, read):
            try:
                value = read(key)
            except OSError:
                return None
            CACHE[key] = value
            return value


        def fetch(key, read, connect):
            try:
                connect()
                return load(key, read)
            except OSError:
                return CACHE.get(key) or recover()
        """,
    "tests/test_fetcher.py": """\
        import pytest

        from depot import fetcher


        def ok(*args):
            return "data"


        def down(*args):
            raise OSError("down")


        def test_a_failed_read_gives_nothing():
            fetcher.CACHE.clear()
            assert fetcher.fetch("k", down, ok) is None


        def test_a_failed_connection_serves_the_cache():
            fetcher.CACHE.clear()
            assert fetcher.fetch("k", ok, ok) == "data"
            assert fetcher.fetch("k", ok, down) == "data"


        def test_other_errors_propagate():
            def bad(*args):
                raise ValueError("bad")

            for read, connect in ((bad, ok), (ok, bad)):
                with pytest.raises(ValueError):
                    fetcher.fetch("k", read, connect)


        def test_recovery_has_a_default():
            assert fetcher.recover() == "default"
        """}


@pytest.mark.slow  # two gate runs
def test_a_function_reached_only_through_an_escaped_exception_is_in_the_key(tmp_path):
    """`load`'s `reraise` mutant lets the `OSError` escape to `fetch`'s handler, which calls
    `recover`: a function the measurement never ran, one frame up, not two calls deep. A mutant's key
    holds every guarded function named in the functions its covering tests executed, so changing
    `recover` (and the test that pins it) re-runs the mutant."""
    project = tiny_project(tmp_path, "depot", RECOVERY)
    cold = run_gate(project)
    assert cold.exit_code == 0, cold.stdout + cold.stderr
    fetcher, tests = project / "depot/fetcher.py", project / "tests/test_fetcher.py"
    fetcher.write_text(fetcher.read_text().replace('return "default"', "return None"))
    tests.write_text(tests.read_text().replace('== "default"', "is None"))
    warm = run_gate(project)
    assert warm.exit_code == 1, warm.stdout + warm.stderr
    assert "raise" in [m["replacement"].strip() for m in survivors(warm)]


# 5. The environment variables the suite reads are in the key

@pytest.mark.slow  # two gate runs
def test_a_variable_the_suite_reads_is_in_the_key(fixture_project):
    """A result is keyed on the environment variables the measurement read (recorded in its process,
    present or absent), so setting one re-runs what depended on it; a variable nobody read (a CI
    run's number) leaves the cache as it is."""
    project = fixture_project("strong", {"tests/test_store.py": [
        ("import logging\n", "import logging\nimport os\n"),
        ("def test_read_error_counts_logs_closes_and_chains(caplog):",
         '@pytest.mark.skipif(bool(os.environ.get("STORE_SKIP_SLOW")), reason="slow")\n'
         "def test_read_error_counts_logs_closes_and_chains(caplog):")]})
    assert run_gate(project).exit_code == 0
    unread = run_gate(project, env={"CI_RUN_NUMBER": "12345"})
    assert unread.exit_code == 0, unread.stdout + unread.stderr
    assert all(m["cached"] for m in unread.mutants() if m["status"] == "killed")
    skipping = run_gate(project, env={"STORE_SKIP_SLOW": "1"})
    assert skipping.exit_code == 1, skipping.stdout + skipping.stderr
    assert survivors(skipping)


# 6. The merge takes shards of one tree only

def merge(project: Path, *results: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gate", "merge", "--project", str(project), *map(str, results)],
                          capture_output=True, text=True, timeout=120)


def shard_result(project: Path, k: int, n: int, keep: Path) -> tuple[int, Path]:
    """Run shard k/n and keep its gate-result.json at `keep`."""
    run = run_gate(project, "--shard", f"{k}/{n}")
    keep.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(project / "reports" / "gate-result.json", keep)
    return run.exit_code, keep


@pytest.mark.slow  # five gate runs
def test_a_shard_of_another_commit_is_not_merged(fixture_project, tmp_path):
    """Each shard's result says what it ran on (the files, commit and uncommitted changes alike,
    the settings, the environment); the merge refuses shards that differ in any (exit 2, naming
    both). A shard rerun after a test was weakened, merged with the other shard from the parent
    commit, once passed where the whole run fails."""
    project = fixture_project("strong")
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "parent")
    before = {k: shard_result(project, k, 2, tmp_path / f"before/{k}.json") for k in (1, 2)}
    assert [code for code, _ in before.values()] == [0, 0]
    test = project / TESTS
    # the one check of the exception's cause: only `raise-drop-cause` survives, in one shard's share
    test.write_text(test.read_text().replace("    assert info.value.__cause__ is cause\n", ""))
    git(project, "commit", "-q", "-am", "weaker")
    after = {k: shard_result(project, k, 2, tmp_path / f"after/{k}.json") for k in (1, 2)}
    failing = [k for k, (code, _) in after.items() if code == 1]
    assert len(failing) == 1, after
    passing = 3 - failing[0]
    assert run_gate(project).exit_code == 1  # the whole run of this commit fails
    done = merge(project, after[passing][1], before[failing[0]][1])
    assert done.returncode == 2, done.stdout + done.stderr
    message = done.stderr.strip()
    assert message.startswith("gate: error [config]: the shards ran on different files"), message
    assert "shard 1/2 at commit" in message and "shard 2/2 at commit" in message
    # the shards of one commit still merge, and give its verdict
    assert merge(project, after[1][1], after[2][1]).returncode == 1


@pytest.mark.slow  # two gate runs
def test_shards_with_uncommitted_changes_or_other_settings_are_not_merged(fixture_project, tmp_path):
    """An uncommitted change is part of the tree; the settings that change a result are compared too."""
    project = fixture_project("strong")
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "start")
    _, first = shard_result(project, 1, 2, tmp_path / "1.json")
    (project / TESTS).write_text((project / TESTS).read_text() + "\n\ndef test_more():\n    assert True\n")
    _, second = shard_result(project, 2, 2, tmp_path / "2.json")
    done = merge(project, first, second)
    assert done.returncode == 2
    assert "plus uncommitted changes" in done.stderr and "different files" in done.stderr
    git(project, "checkout", "-q", "--", TESTS)
    _, second = shard_result(project, 2, 2, tmp_path / "2.json")
    assert merge(project, first, second).returncode == 0
    project.joinpath("pyproject.toml").write_text(
        project.joinpath("pyproject.toml").read_text() + "timeout_multiplier = 20\n")
    git(project, "commit", "-q", "-am", "slower limits")
    _, second = shard_result(project, 2, 2, tmp_path / "2.json")
    done = merge(project, first, second)
    assert done.returncode == 2 and "different files" in done.stderr  # the pyproject is a file too


# 7. --changed takes in the regions a changed function can make behave otherwise

LOOKUP = {
    "kv/store.py": """\
        def _read(data, key):
            return data[key]


        def load(data, key):
            try:
                return _read(data, key)
            except KeyError:
                return None
        """,
    "tests/test_store.py": """\
        import pytest

        from kv.store import load


        def test_a_missing_key_gives_nothing():
            assert load({}, "k") is None


        class Broken:
            def __contains__(self, key):
                raise IndexError(key)

            def __getitem__(self, key):
                raise IndexError(key)


        @pytest.mark.parametrize("data, error", [(None, TypeError), (Broken(), IndexError)])
        def test_other_errors_are_not_caught(data, error):
            with pytest.raises(error):
                load(data, "k")


        def test_a_present_key_gives_its_value():
            assert load({"k": 1}, "k") == 1
        """}


def staged_change_to_read(project: Path) -> None:
    store = project / "kv/store.py"
    store.write_text(store.read_text().replace("return data[key]", "return data[key] if key in data else None"))
    git(project, "add", "-A")


@pytest.mark.slow  # three gate runs
def test_changed_takes_in_a_handler_a_changed_callee_makes_dead(tmp_path):
    """A region is in a `--changed` run's scope when its function's covering tests (in the last full
    run) executed a changed function, or its function can reach one by name: the rule the cache
    keys results by. `_read` no longer raises `KeyError`, so `load`'s handler is never entered."""
    project = tiny_project(tmp_path, "kv", LOOKUP)
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "start")
    assert run_gate(project).exit_code == 0  # the last full run, whose coverage the scope asks
    staged_change_to_read(project)
    changed = run_gate(project, "--changed")
    assert changed.exit_code == 1, changed.stdout + changed.stderr
    assert "kv/store.py:8" in changed.stdout and "never entered" in changed.stdout
    assert run_gate(project).exit_code == 1  # what the full run says too


@pytest.mark.slow  # a gate run
def test_changed_with_no_last_full_run_checks_every_region(tmp_path):
    """With no last full run to say which tests executed the changed function, every region is in scope."""
    project = tiny_project(tmp_path, "kv", LOOKUP)
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "start")
    staged_change_to_read(project)
    changed = run_gate(project, "--changed")
    assert changed.exit_code == 1, changed.stdout + changed.stderr
    assert "--changed widened to every region" in changed.stdout
    assert "never entered" in changed.stdout


@pytest.mark.slow  # two gate runs
def test_changed_with_only_a_helper_module_staged_widens(fixture_project):
    """A module named like a test module that defines no test is a helper of the tests that import
    it: `--changed` with only it staged widens to every region and gives that run's verdict (it once
    ran the helper alone and stopped with "the suite collected no tests")."""
    project = helper_project(fixture_project)
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "start")
    assert run_gate(project).exit_code == 0
    (project / "tests/test_checks.py").write_text(textwrap.dedent(WEAK_CHECKS))
    git(project, "add", "-A")
    changed = run_gate(project, "--changed")
    assert changed.exit_code == 1, changed.stdout + changed.stderr
    assert "--changed widened to every region: tests/test_checks.py changed" in changed.stdout
    assert survivors(changed)


# 8. An adoption entry holds the finding it was made for, in its region, and no other

PUSHER = """\
    def push(send, items):
        for item in items:
            try:
                send(item)
            except OSError:
                return False
        return True
    """
PUSHER_TESTS = """\
    from relay.pusher import push


    def down(item):
        raise OSError("down")


    def test_a_failed_send_gives_false():
        assert push(down, [1]) is False
        assert push(lambda item: None, [1]) is True
    """


def write_adoption_file(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gate", "adopt", "--project", str(project), "-q",
                           "--reason", "adopted", "--expires", "2099-01-31"], capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # three gate runs
def test_a_new_survivor_in_a_region_alike_does_not_take_an_old_entry(tmp_path):
    """A finding's fingerprint holds its region's shape (the handler's own code and its `try`
    body's; a `raise`'s statement), so a survivor in another region alike (here a new, untested
    `except OSError:` above the old one, which a test now covers) never matches the entry made for
    the old one; the same region moved keeps its entry."""
    project = tiny_project(tmp_path, "relay", {"relay/pusher.py": PUSHER, "tests/test_pusher.py": PUSHER_TESTS})
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'adoption_file = "gate-adopted.json"\n')
    done = write_adoption_file(project)
    assert done.returncode == 0, done.stdout + done.stderr
    [entry] = json.loads((project / "gate-adopted.json").read_text())["entries"]
    assert "broaden" in entry["what"]

    moved = project / "relay/pusher.py"
    moved.write_text('"""Pushing items."""\n\nRETRIES = 0\n\n\n' + moved.read_text())
    held = run_gate(project)
    assert held.exit_code == 0 and "with 1 adopted finding" in held.stdout, held.stdout + held.stderr

    moved.write_text(moved.read_text().replace(
        "def push(send, items):\n", "def push(send, items, connect=lambda: None):\n"
        "    try:\n        connect()\n    except OSError:\n        return False\n"))
    tests = project / "tests/test_pusher.py"
    tests.write_text(tests.read_text() + textwrap.dedent("""\


        def test_a_failed_connection_gives_false():
            assert push(lambda item: None, [1], connect=lambda: down(None)) is False


        def test_other_send_errors_propagate():
            def bad(item):
                raise ValueError(item)

            with pytest.raises(ValueError):
                push(bad, [1])
        """))
    tests.write_text("import pytest\n" + tests.read_text())
    run = run_gate(project)
    assert run.exit_code == 1, run.stdout + run.stderr
    [survivor] = survivors(run)
    assert survivor["operator"] == "broaden" and survivor["start"] < 12 and not survivor["adopted"]
    assert "adoption entry no longer needed (remove it from gate-adopted.json" in run.stdout


# Also: a timeout counts only once it repeats alone with twice the limit, and is counted apart

RETRY = {
    "retry/client.py": """\
        import time


        def fetch(get):
            try:
                return get()
            except ConnectionError:
                time.sleep(0.05)  # back off once
                return get()
        """,
    "tests/test_client.py": """\
        import time

        import pytest

        from retry.client import fetch


        def flaky(error=ConnectionError):
            calls = []

            def get():
                calls.append(1)
                if len(calls) == 1:
                    raise error("reset")
                return "data"
            return get


        def test_a_reset_is_retried_after_a_back_off():
            started = time.monotonic()
            assert fetch(flaky()) == "data"
            assert time.monotonic() - started >= 0.05  # no upper bound: a slower back-off passes


        @pytest.mark.parametrize("error", [ValueError, OSError])
        def test_other_errors_propagate(error):
            with pytest.raises(error):
                fetch(flaky(error))
        """}


def retry_project(tmp_path: Path, multiplier: float) -> Path:
    project = tiny_project(tmp_path, "retry", RETRY)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f"timeout_multiplier = {multiplier}\ntimeout_constant = 0.2\n")
    return project


@pytest.mark.slow  # a gate run with mutants that time out
def test_a_mutant_that_only_slows_the_code_is_run_again_before_its_timeout_counts(tmp_path):
    """A timed-out mutant is run once more, alone, with twice the limit, before its timeout
    counts: the back-off made 1.05 s outlasts a 1 s limit but not a 2 s one, and is the survivor
    it is (it once counted as killed)."""
    run = run_gate(retry_project(tmp_path, 2), "--no-explain")
    assert run.exit_code == 1, run.stdout + run.stderr
    [slower] = survivors(run)
    assert "1.05" in slower["replacement"]
    assert slower["detail"].startswith("timed out once (stopped after")
    assert "then alone with twice the limit it finished" in slower["detail"]


@pytest.mark.slow  # a gate run with mutants that time out
def test_a_mutant_counted_killed_only_by_timing_out_is_said_so(tmp_path):
    """A mutant that times out twice counts as killed by default (`timeout_counts_as`), but the
    verdict line never says every mutant was killed without saying how many only timed out;
    `summary.json` counts them and the mutation report marks them."""
    run = run_gate(retry_project(tmp_path, 1), "--no-explain")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert ("gate PASSED (exit 0: every error-handling mutant killed, 1 of them only by timing out (twice, the "
            "second time alone with twice the limit) and every handler entered)") in run.stdout
    assert run.summary["counts"]["killed_by_timeout"] == 1
    [timed] = [m for m in run.mutants() if m["status"] == "timeout"]
    assert "then alone with twice the limit, stopped after" in timed["detail"]
    report = json.loads((run.project / "reports/mutation/mutation.json").read_text())
    [entry] = [m for f in report["files"].values() for m in f["mutants"] if m["status"] == "Timeout"]
    assert entry["statusReason"].startswith("counted killed only by timing out")
