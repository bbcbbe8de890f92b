"""The gate fails closed under every fault: a non-zero exit with a one-line reason naming the
cause, the project's files byte-identical, no process left behind, and a next run that works.

Each fault is real: a broken environment, a mutant that loops or allocates without bound, a worker
killed from outside, Ctrl-C, a second run at once. Nothing of the gate is mocked.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from gate.errors import InfrastructureError
from gate.steps import regions
from tests.gate.conftest import digest_files, run_gate

REPO = Path(__file__).resolve().parents[2]


class Watched:
    """A gate run as a child process, tagged so that every process it starts can be found later."""

    def __init__(self, project: Path, *args: str, env: dict[str, str] | None = None,
                 python_args: tuple[str, ...] = ()) -> None:
        self.tag = uuid.uuid4().hex
        full_env = {**os.environ, "GATE_TEST_TAG": self.tag, **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, *python_args, "-m", "gate", "--project", str(project), "-q", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)

    def wait(self, timeout: float = 600) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, out, err

    def leftovers(self) -> list[int]:
        """Processes still alive that were started by this run (they carry its tag)."""
        alive = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if f"GATE_TEST_TAG={self.tag}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                        alive.append(int(entry.name))
                except OSError:
                    continue
        return alive


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)


STOP_ONLY = ("--paths", "streams/workers.py", "--tests", "tests/test_stop.py")


def faults_project(fixture_project, tmp_path) -> tuple[Path, dict[str, str]]:
    project = fixture_project("faults")
    fault_dir = tmp_path / "fault-pids"
    fault_dir.mkdir()
    return project, {"FAULT_DIR": str(fault_dir)}


# 1. a red suite: tests/gate/test_gate_runs.py::test_red_suite_exits_3_and_names_the_failing_test


# 2. mutmut missing, or crashing

def path_without_mutmut(tmp_path: Path) -> str:
    """This interpreter's import path (site-packages, PYTHONPATH folders, however mutmut was
    installed) with every folder that holds mutmut replaced by a copy of links without it: for
    `python -S`, which then sees everything but mutmut."""
    base = Path(sys.base_prefix).resolve()
    entries = [str(REPO)]
    for index, folder in enumerate(Path(p).resolve() for p in sys.path if p and Path(p).is_dir()):
        if folder == REPO or (folder.is_relative_to(base) and "site-packages" not in folder.parts):
            continue  # the repository comes first anyway; the standard library stays on the path under -S
        if not any(entry.name.lower().startswith("mutmut") for entry in folder.iterdir()):
            entries.append(str(folder))
            continue
        shadow = tmp_path / f"without-mutmut-{index}"
        shadow.mkdir()
        for entry in folder.iterdir():
            if not entry.name.lower().startswith("mutmut"):
                (shadow / entry.name).symlink_to(entry)
        entries.append(str(shadow))
    return os.pathsep.join(entries)


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_mutmut_missing_fails_closed(fixture_project, tmp_path):
    project = fixture_project("strong")
    before = digest_files(project)
    run = Watched(project, env={"PYTHONPATH": path_without_mutmut(tmp_path)}, python_args=("-S",))
    code, out, err = run.wait()
    assert code == 4, out + err
    assert err.strip() == "gate: error [infrastructure]: mutmut is not installed (pip install 'mutmut==3.8.1')"
    assert digest_files(project) == before and run.leftovers() == []
    assert run_gate(project).exit_code == 0


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_mutmut_crashing_fails_closed(fixture_project, tmp_path):
    broken = tmp_path / "broken-mutmut" / "mutmut"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise RuntimeError('mutmut exploded on import')\n")
    project = fixture_project("strong")
    before = digest_files(project)
    # first on the path, before wherever the real one is installed (a venv, or PYTHONPATH itself)
    inherited = os.environ.get("PYTHONPATH")
    run = Watched(project, env={"PYTHONPATH": os.pathsep.join([str(broken.parent), *([inherited] if inherited else [])])})
    code, out, err = run.wait()
    assert code == 4, out + err
    assert err.strip() == ("gate: error [infrastructure]: mutmut (generate) crashed: RuntimeError: "
                           "mutmut exploded on import")
    assert digest_files(project) == before and run.leftovers() == []
    assert run_gate(project).exit_code == 0


# 3. a fork-server worker killed mid-run

@pytest.mark.slow
def test_worker_killed_mid_run_is_a_crash_not_a_kill(fixture_project, tmp_path):
    project, env = faults_project(fixture_project, tmp_path)
    fault_dir = Path(env["FAULT_DIR"])
    before = digest_files(project)
    run = Watched(project, *STOP_ONLY, env={**env, "FAULT": "wait-to-be-killed"})
    killed: list[str] = []

    def killer() -> None:  # SIGKILL every mutant worker that announces itself, as an OOM killer would
        while run.process.poll() is None:
            for marker in fault_dir.glob("*.pid"):
                os.kill(int(marker.stem), signal.SIGKILL)
                killed.append(marker.read_text())
                marker.unlink()
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    code, out, err = run.wait()
    thread.join()
    assert code == 4, out + err
    assert killed
    labels = {m["name"]: m["label"] for m in json.loads((project / "reports" / "gate-result.json").read_text())["mutants"]}
    for name in killed:
        assert f"FAIL [4] crashed: {labels[name]}: " in out
    assert "the worker killed by SIGKILL" in out
    assert digest_files(project) == before and run.leftovers() == []
    rerun = run_gate(project, *STOP_ONLY)  # no fault this time: the crashed mutants are tested again
    assert rerun.exit_code == 0, rerun.stdout + rerun.stderr
    assert rerun.summary["counts"]["cached"] < rerun.summary["counts"]["selected"]


# 4. no regions in guarded files that do handle errors

def test_no_regions_found_in_files_that_use_except_fails_closed(tmp_path, monkeypatch):
    # The finder and this check read the same files two ways (ast and tokens); the check guards
    # against a finder that misses code. Here the finder is made to find nothing.
    monkeypatch.setattr(regions, "find_regions", lambda *args: [])
    (tmp_path / "handlers.py").write_text("def f():\n    try:\n        pass\n    except OSError:\n        pass\n")
    with pytest.raises(InfrastructureError) as info:
        regions.find_all(tmp_path, ["handlers.py"], [])
    assert str(info.value) == ("no error-handling regions found in 1 guarded files that use "
                               "except/finally/raise (first: handlers.py)")


# 5. no mutants where regions exist

@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_no_mutants_where_regions_exist_fails_closed(fixture_project):
    store = "vault/store.py"
    project = fixture_project("strong")
    path = project / store
    # every line of every region excluded from mutation with mutmut's pragma
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line + "  # pragma: no mutate" if i >= 19 and line.strip() else line
                              for i, line in enumerate(lines, 1)) + "\n")
    before = digest_files(project)
    run = run_gate(project)
    assert run.exit_code == 4, run.stdout + run.stderr
    assert run.stderr.strip() == ("gate: error [infrastructure]: no mutants were generated in 5 error-handling "
                                  "regions that mutmut can mutate")
    assert digest_files(project) == before


# 6. a mutant that loops forever, 7. a mutant that allocates without bound

@pytest.fixture(scope="module")
def loops_and_allocations(tmp_path_factory):
    from tests.gate.conftest import copy_fixture

    project = copy_fixture("faults", tmp_path_factory.mktemp("faults"))
    (project / "mutmut_config.py").write_text("guarded_paths = ['streams']\ntimeout_counts_as = 'survived'\n")
    before = digest_files(project)
    run = Watched(project, "--paths", "streams/io.py", "--tests", "tests/test_fetch.py", "tests/test_collect.py")
    code, out, err = run.wait()
    return project, before, run, code, out, err


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_looping_mutant_is_stopped_at_a_timeout_from_the_measurement(loops_and_allocations):
    project, before, run, code, out, err = loops_and_allocations
    assert code == 1, out + err  # the policy here counts a timeout as a survivor
    loops = [line for line in out.splitlines() if line.startswith("  timeout: streams/io.py:") and " fetch #" in line]
    assert loops
    for line in loops:
        # (measured 0.0x s + timeout_constant 0.5 s) x timeout_multiplier 3 = about 2 s, not forever
        assert line.endswith("stopped after 2.0s (limit 2.0s)") or "(limit 2." in line
    assert "FAIL [1] timed out (counted as survived by policy): streams/io.py:" in out
    assert digest_files(project) == before and run.leftovers() == []
    import json

    # every report flags what the verdict counts against the gate
    sarif = json.loads((project / "reports/gate.sarif").read_text())["runs"][0]["results"]
    flagged = [r["message"]["text"] for r in sarif if "timed out" in r["message"]["text"]]
    assert len(flagged) == len(loops)
    junit = (project / "reports/gate-junit.xml").read_text()
    for line in loops:
        label = line.split(": ", 1)[1].split("  ")[0]  # `  timeout: <label>  <what stopped it>`
        assert f"timeout: {label} (" in junit  # in its region's failed case
    # a timeout may be the machine's doing: it is never cached, the next run tests it again
    cached = json.loads((project / ".gate/results.json").read_text())["entries"].values()
    assert cached and not [e for e in cached if e["status"] == "timeout"]


@pytest.mark.slow
def test_unbounded_allocation_hits_the_worker_memory_limit(loops_and_allocations):
    project, before, run, code, out, err = loops_and_allocations
    import json

    mutants = json.loads((project / "reports/gate-result.json").read_text())["mutants"]
    [swallow] = [m for m in mutants if m["unit"] == "collect" and m["operator"] == "swallow"]
    # swallowing TooLarge keeps appending a fresh megabyte forever: the 300 MiB limit stops it
    assert swallow["status"] == "killed"
    assert swallow["detail"].startswith("MemoryError")
    assert swallow["killed_by"] == "tests/test_collect.py::test_stops_an_endless_stream_at_the_limit"
    assert digest_files(project) == before and run.leftovers() == []


# 8. a mutant that kills its own process

@pytest.mark.parametrize("fault, how", [("exit", "exited with 0 before pytest finished"),
                                        ("sigkill", "killed by SIGKILL")])
@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_worker_that_kills_itself_is_reported_as_a_crash(fixture_project, tmp_path, fault, how):
    project, env = faults_project(fixture_project, tmp_path)
    before = digest_files(project)
    run = Watched(project, *STOP_ONLY, env={**env, "FAULT": fault})
    code, out, err = run.wait()
    assert code == 4, out + err
    assert "FAIL [4] crashed: streams/workers.py:" in out and " stop #" in out
    assert f"the worker {how}" in out
    assert digest_files(project) == before and run.leftovers() == []
    # the policy may count a crash as a kill, knowingly
    (project / "mutmut_config.py").write_text("guarded_paths = ['streams']\ncrash_counts_as = 'killed'\n")
    rerun = Watched(project, *STOP_ONLY, env={**env, "FAULT": fault})
    code, out, err = rerun.wait()
    assert code == 0, out + err
    assert "  crashed: streams/workers.py:" in out  # still reported on its own line


# 8b. a mutant whose test run ends in one of pytest's own errors (exit 2, interrupted): not a kill

@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_a_mutant_that_interrupts_pytest_is_an_error_not_a_kill(fixture_project, tmp_path):
    project, env = faults_project(fixture_project, tmp_path)
    run = Watched(project, *STOP_ONLY, env={**env, "FAULT": "interrupt"})
    code, out, err = run.wait()
    assert code == 4, out + err
    assert "FAIL [4] could not test streams/workers.py:" in out and " stop #" in out
    assert "pytest exit 2 (interrupted)" in out
    mutants = json.loads((project / "reports" / "gate-result.json").read_text())["mutants"]
    # a kill is a failing test, named; never an interrupted session
    assert all("::" in m["killed_by"] for m in mutants if m["status"] == "killed")
    assert any(m["status"] == "error" for m in mutants)


# 9. Ctrl-C mid-run

@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_ctrl_c_exits_130_leaves_nothing_running_and_the_next_run_resumes(fixture_project, tmp_path):
    project, env = faults_project(fixture_project, tmp_path)
    fault_dir = Path(env["FAULT_DIR"])
    before = digest_files(project)
    # two workers, whatever the core count: a fourth mutant started means two have finished
    run = Watched(project, *STOP_ONLY, "--max-workers", "2", env={**env, "FAULT": "slow-then-hold"})
    wait_for(lambda: len(list(fault_dir.glob("*.pid"))) >= 4)  # some mutants done, others running
    run.process.send_signal(signal.SIGINT)
    code, out, err = run.wait()
    assert code == 130, out + err
    assert err.strip().endswith("interrupted by Ctrl-C; finished results are cached")
    summary = json.loads((project / "reports" / "summary.json").read_text())
    assert (summary["verdict"], summary["exit_code"]) == ("error", 130)
    wait_for(lambda: run.leftovers() == [], timeout=15)
    assert digest_files(project) == before
    rerun = run_gate(project, *STOP_ONLY)
    assert rerun.exit_code == 0, rerun.stdout + rerun.stderr
    counts = rerun.summary["counts"]
    assert 1 <= counts["cached"] < counts["selected"]


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_sigterm_stops_the_run_like_ctrl_c_and_leaves_its_verdict(fixture_project, tmp_path):
    # a CI job that is cancelled or times out gets SIGTERM: the shard still says what stopped it
    project, env = faults_project(fixture_project, tmp_path)
    fault_dir = Path(env["FAULT_DIR"])
    run = Watched(project, *STOP_ONLY, "--shard", "1/1", env={**env, "FAULT": "slow"})
    wait_for(lambda: any(fault_dir.glob("*.pid")))
    run.process.send_signal(signal.SIGTERM)
    code, out, err = run.wait()
    assert code == 130, out + err
    assert err.strip() == "gate: error [interrupted]: stopped by SIGTERM; finished results are cached"
    result = json.loads((project / "reports" / "gate-result.json").read_text())
    assert (result["verdict"]["exit_code"], result["shard"], result["error"]) == (130, [1, 1], "interrupted")
    wait_for(lambda: run.leftovers() == [], timeout=15)


# 10. two gate runs at once in one repository

@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_second_concurrent_run_stops_with_a_clear_message(fixture_project, tmp_path):
    project, env = faults_project(fixture_project, tmp_path)
    fault_dir = Path(env["FAULT_DIR"])
    before = digest_files(project)
    first = Watched(project, *STOP_ONLY, env={**env, "FAULT": "slow"})
    wait_for(lambda: any(fault_dir.glob("*.pid")))  # the first run is testing mutants, holding the lock
    second = Watched(project, *STOP_ONLY, env=env)
    code, out, err = second.wait()
    assert code == 4
    assert err.strip() == (f"gate: error [locked]: another gate run (pid {first.process.pid}) is using "
                           f"{project / '.gate'}; wait for it to finish or pass --lock-timeout SECONDS")
    assert not (project / "reports" / "summary.json").exists()  # the refused run touched no report
    waiting = Watched(project, *STOP_ONLY, "--lock-timeout", "300", env=env)
    assert first.wait()[0] == 0
    code, out, err = waiting.wait()
    assert code == 0, out + err  # it waited, then found every result cached
    assert first.leftovers() == [] and second.leftovers() == [] and waiting.leftovers() == []
    assert digest_files(project) == before


# 11. a bad policy or setting: tests/gate/test_gate_runs.py (syntax error, hook that raises, bad values)

@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_hook_returning_nonsense_is_a_config_error(fixture_project):
    project = fixture_project("strong")
    (project / "mutmut_config.py").write_text(
        "guarded_paths = ['vault']\ndef pre_mutation(context):\n    return 'skip'\n")
    before = digest_files(project)
    run = run_gate(project)
    assert digest_files(project) == before
    assert run.exit_code == 2
    assert run.stderr.strip() == ("gate: error [config]: mutmut_config.py: pre_mutation must return None and "
                                  "set context.skip, it returned 'skip'")


# 12. a guarded file that does not parse

def test_guarded_file_that_does_not_parse_exits_2_with_file_and_line(fixture_project):
    project = fixture_project("strong")
    path = project / "vault/store.py"
    path.write_text(path.read_text().replace("    def close(self):", "    def close(self)"))
    before = digest_files(project)
    run = run_gate(project)
    assert run.exit_code == 2
    assert run.stderr.strip() == "gate: error [syntax]: vault/store.py:31: cannot parse guarded file: expected ':'"
    assert digest_files(project) == before
