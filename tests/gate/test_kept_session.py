"""The fork server's collected pytest session (`gate.mutmut_adapter.kept_session`): each worker runs its tests in
it and gets the exit code `pytest.main` would have given, and the gate's verdicts do not depend on
which of the two ran them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from gate.mutmut_adapter.kept_session import KeptSession
from tests.gate.conftest import run_gate

TESTS = '''
import pytest

def test_passes():
    pass

def test_fails():
    assert 1 == 2

def test_interrupts():
    raise KeyboardInterrupt

def test_exits():
    pytest.exit("stop", returncode=3)

@pytest.mark.parametrize("n", [1, 2])
def test_numbers(n):
    assert n

class TestGroup:
    def test_one(self):
        pass
'''


class Recorder:
    def __init__(self):
        self.failed = []

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.failed.append(report.nodeid)


@pytest.fixture
def suite(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_sample.py").write_text(textwrap.dedent(TESTS))
    (tmp_path / "tests" / "test_other.py").write_text("def test_other():\n    pass\n")
    return tmp_path


def forked(fn):
    """`fn()`'s JSON-able result, computed in a forked child: as mutmut's fork server keeps a
    session and forks a worker per mutant, and without touching this test's own pytest."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            os.write(write, json.dumps(fn()).encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))


def with_session(root, probe):
    """`probe(session, recorder)` in a process that kept a session of the suite in `root`."""
    def child():
        os.chdir(root)
        sys.path.insert(0, str(root))
        recorder = Recorder()
        session = KeptSession(["--rootdir=.", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "tests"],
                              [recorder])
        return probe(session, recorder)
    return forked(child)


def worker(session, recorder, tests):
    """A worker's run of `tests`: its exit code and the node ids that failed."""
    return forked(lambda: [session.run(session.select(tests)), recorder.failed])


def test_a_selection_is_of_collected_items_in_the_order_given(suite):
    def probe(session, recorder):
        def ids(tests):
            items = session.select(tests)
            return None if items is None else [i.nodeid for i in items]
        return {"pair": ids(["tests/test_other.py::test_other", "tests/test_sample.py::test_passes"]),
                "function": ids(["tests/test_sample.py::test_numbers"]), "file": ids(["tests/test_other.py"]),
                "folder": len(ids(["tests"])), "all": len(session.items),
                "method": ids(["tests/test_sample.py::TestGroup::test_one"]),
                "option": ids(["-k", "passes"]), "unknown": ids(["tests/test_sample.py::test_missing"]),
                "elsewhere": ids(["tests/elsewhere"])}

    found = with_session(suite, probe)
    assert found["pair"] == ["tests/test_other.py::test_other", "tests/test_sample.py::test_passes"]
    assert found["function"] == ["tests/test_sample.py::test_numbers[1]", "tests/test_sample.py::test_numbers[2]"]
    assert found["file"] == ["tests/test_other.py::test_other"]
    assert found["folder"] == found["all"] == 8
    assert found["method"] == ["tests/test_sample.py::TestGroup::test_one"]
    # anything it did not collect is the caller's to run with pytest.main
    assert found["option"] is found["unknown"] is found["elsewhere"] is None


CASES = {
    "passes": ["tests/test_sample.py::test_passes"],
    # -x: the first failure ends the run, and the test after it never runs
    "fails": ["tests/test_sample.py::test_fails", "tests/test_sample.py::test_passes"],
    "interrupts": ["tests/test_sample.py::test_interrupts"],
    "exits": ["tests/test_sample.py::test_exits"],
}


def test_a_worker_gets_the_exit_code_pytest_main_gives(suite):
    runs = with_session(suite, lambda session, recorder: {
        name: worker(session, recorder, tests) for name, tests in CASES.items()})
    assert runs["passes"] == [0, []]
    assert runs["fails"] == [1, ["tests/test_sample.py::test_fails"]]
    assert runs["interrupts"][0] == 2
    assert runs["exits"][0] == 3
    for name, tests in CASES.items():
        main = subprocess.run([sys.executable, "-m", "pytest", "--rootdir=.", "-x", "-q", "-p", "no:cacheprovider",
                               *tests], cwd=suite, capture_output=True)
        assert runs[name][0] == main.returncode, name


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_the_gate_gives_the_same_outcomes_with_and_without_the_kept_session(fixture_project):
    # which of several failing tests kills a mutant first depends on this run's timings, so the
    # kept session's run starts from the plain run's results with every key made stale: each
    # mutant is tested again, its last killer first, and that test must kill it here too
    outcomes = []
    results = None
    for levers in ("kept-session", ""):
        project = fixture_project("strong")
        if results is not None:
            (project / ".gate").mkdir()
            (project / ".gate/results.json").write_text(json.dumps(results))
        run = run_gate(project, env={"GATE_LEVERS_OFF": levers})
        assert run.exit_code == 0, run.stdout + run.stderr
        mutants = run.mutants()
        assert not any(m["cached"] for m in mutants)
        outcomes.append(sorted((m["name"], m["status"], m["killed_by"]) for m in mutants))
        results = json.loads((project / ".gate/results.json").read_text())
        for entry in results["entries"].values():
            entry["key"] = "stale"
        (project.parent / "strong").rename(project.parent / ("strong-plain" if levers else "strong-kept"))
    assert outcomes[0] == outcomes[1]
