"""The measurement's progress (issue 26, point 13): how many of the collected tests have finished
and what the rest took last time, on one line rewritten in place on a terminal, a line every tenth
when piped; a line left open is ended before anything else is printed (a Ctrl-C's message too),
and a measurement that is stopped says the next run starts it over."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from gate import process
from gate.errors import Interrupted, Terminated
from gate.report.progress_line import TerminalProgress
from gate.result import MutantStatus
from gate.steps import measurement as measurement_step
from gate.wire import codec
from gate.wire import measurement as messages
from gate.wire.codec import WireError
from gate.wire.measurement import Collected, EnvironmentReads, Finished, MeasurementRecord
from tests.gate.conftest import REPO_ROOT, copy_fixture


class Stream(io.StringIO):
    """stderr as the progress line sees it: a terminal or a pipe."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


CLEAR = "\r\033[K"


# the status line


def test_piped_the_measurement_prints_a_line_every_tenth_with_the_time_left():
    stream = Stream(tty=False)
    progress = TerminalProgress(stream)
    for done in range(0, 201):
        progress.measurement(done, 200, (200 - done) * 3.0)
    assert stream.getvalue().splitlines() == [
        "gate: measurement 0/200 tests, about 10 min left",
        "gate: measurement 20/200 tests, about 9 min left",
        "gate: measurement 40/200 tests, about 8 min left",
        "gate: measurement 60/200 tests, about 7 min left",
        "gate: measurement 80/200 tests, about 6 min left",
        "gate: measurement 100/200 tests, about 5 min left",
        "gate: measurement 120/200 tests, about 4 min left",
        "gate: measurement 140/200 tests, about 3 min left",
        "gate: measurement 160/200 tests, about 2 min left",
        "gate: measurement 180/200 tests, about 1 min left",
        "gate: measurement 200/200 tests",
    ]


def test_on_a_terminal_the_measurement_line_is_rewritten_in_place_and_ended_at_the_last_test():
    stream = Stream(tty=True)
    progress = TerminalProgress(stream)
    progress.measurement(0, 3, None)  # no last measurement: no estimate
    progress.measurement(2, 3, None)
    assert stream.getvalue() == f"{CLEAR}gate: measurement 0/3 tests{CLEAR}gate: measurement 2/3 tests"
    assert progress.open
    progress.measurement(3, 3, None)
    assert stream.getvalue().endswith(f"{CLEAR}gate: measurement 3/3 tests\n") and not progress.open


@pytest.mark.parametrize("seconds, said", [
    (0.2, "about 1 s left"), (40.0, "about 40 s left"), (58.5, "about 59 s left"), (59.5, "about 1 min left"), (300.0, "about 5 min left"),
    (4200.0, "about 1 h 10 min left"), (None, ""), (0.0, ""),
])
def test_the_time_left_reads_in_seconds_minutes_and_hours(seconds, said):
    stream = Stream(tty=False)
    TerminalProgress(stream).measurement(5, 10, seconds)
    assert stream.getvalue() == f"gate: measurement 5/10 tests{', ' + said if said else ''}\n"


def test_a_line_left_open_is_ended_before_the_next_message():
    stream = Stream(tty=True)
    progress = TerminalProgress(stream)
    progress.measurement(1, 4, 3.0)
    progress.stage("generating mutants")  # the next step's line starts a line of its own
    progress.mutant(SimpleNamespace(status=MutantStatus.KILLED), 1, 2)  # only its status is shown
    progress.end_line()  # what the Ctrl-C's message needs (gate.cli)
    progress.end_line()  # nothing open: nothing written
    assert stream.getvalue() == (f"{CLEAR}gate: measurement 1/4 tests, about 3 s left\ngate: generating mutants\n"
                                 f"{CLEAR}gate: mutants 1/2  killed 1  survived 0\n")


def test_quiet_prints_no_measurement_progress():
    stream = Stream(tty=True)
    progress = TerminalProgress(stream, quiet=True)
    progress.measurement(1, 4, 3.0)
    progress.end_line()
    assert stream.getvalue() == ""


# the gate's side of the progress files


class Heard:
    def __init__(self) -> None:
        self.said: list[tuple[int, int, float | None]] = []
        self.ended = 0

    def measurement(self, done: int, total: int, seconds_left: float | None) -> None:
        self.said.append((done, total, seconds_left))

    def end_line(self) -> None:
        self.ended += 1


def record(durations: dict[str, float]) -> MeasurementRecord:
    return MeasurementRecord(key="k", durations=durations, seconds=10.0, imported=(), processes=2,
                             environment=EnvironmentReads((), None), environment_digest="")


def append(path: Path, *lines: Collected | Finished | str) -> None:
    with path.open("a") as out:
        for line in lines:
            out.write(line if isinstance(line, str) else codec.dumps(line, messages.PROGRESS_FORMAT) + "\n")


def test_the_watch_counts_the_finished_tests_of_every_process_and_the_slowest_ones_rest(tmp_path):
    files = [tmp_path / "progress-1.jsonl", tmp_path / "progress-2.jsonl"]
    heard = Heard()
    watch = measurement_step._Watch(files, record({"a": 1.0, "b": 2.0, "c": 4.0, "d": 1.0}), heard)
    append(files[0], Collected(("a", "b")), Finished("a"))
    watch.update()
    assert heard.said == []  # the total waits for every process's collection
    append(files[1], Collected(("c", "new")))
    watch.update()
    # process 1 has b (2 s) left, process 2 has c (4 s) and a new test (the mean, 2 s)
    assert heard.said == [(1, 4, 6.0)]
    append(files[1], Finished("c"), '{"kind": "Finished", "format"')  # the last line is still being written
    watch.update()
    assert heard.said[-1] == (2, 4, 2.0)
    append(files[1], ': 1, "test": "new"}\n')
    append(files[0], Finished("b"))
    watch.update()
    watch.update()  # nothing new: nothing said
    assert heard.said[-1] == (4, 4, 0.0) and len(heard.said) == 3 and watch.error is None


def test_without_a_last_measurement_there_is_no_estimate(tmp_path):
    heard = Heard()
    watch = measurement_step._Watch([tmp_path / "progress-1.jsonl"], None, heard)
    append(tmp_path / "progress-1.jsonl", Collected(("a", "b")), Finished("a"))
    watch.update()
    assert heard.said == [(1, 2, None)]


def test_a_progress_line_of_another_shape_is_the_watchs_error_naming_the_field(tmp_path):
    path = tmp_path / "progress-1.jsonl"
    watch = measurement_step._Watch([path], None, Heard())
    append(path, Collected(("a",)), '{"kind": "Finished", "format": 1, "nodeid": "a"}\n')
    watch.update()
    assert isinstance(watch.error, WireError)
    assert str(watch.error) == "Finished (format 1): unknown field 'nodeid'"


# the measurement itself


def tiny_project(root: Path, tests: int = 12) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "mod.py").write_text(
        "def inverse(x):\n    try:\n        return 1 / x\n    except ZeroDivisionError:\n        return None\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_mod.py").write_text("import time\n\nfrom pkg.mod import inverse\n\n" + "".join(
        f"\ndef test_{i}():\n    time.sleep(0.05)\n    assert inverse({i}) {'is None' if i == 0 else '== 1 / ' + str(i)}\n"
        for i in range(tests)))
    return root


def run_suite(project: Path, data_dir: Path, stream: Stream) -> measurement_step.Measurement:
    return measurement_step._run_suite(project, data_dir, ["tests"], [], ["pkg/mod.py"], 1, TerminalProgress(stream))


def test_a_measurement_reports_its_tests_as_they_finish_and_the_next_one_estimates(tmp_path):
    project, data_dir = tiny_project(tmp_path / "project"), tmp_path / "data"
    data_dir.mkdir()
    first = Stream(tty=False)
    measured = run_suite(project, data_dir, first)
    lines = first.getvalue().splitlines()
    # the first poll after the collection shows whatever has finished by then
    assert re.fullmatch(r"gate: measurement \d+/12 tests", lines[0]) and lines[-1] == "gate: measurement 12/12 tests"
    assert all(re.fullmatch(r"gate: measurement \d+/12 tests", line) for line in lines)  # no estimate
    # with the last measurement's durations (0.05 s a test), the next run says what is left
    codec.write(data_dir / "measurement.json", record(measured.durations), messages.FORMAT)
    second = Stream(tty=False)
    run_suite(project, data_dir, second)
    lines = second.getvalue().splitlines()
    assert all(re.fullmatch(r"gate: measurement \d+/12 tests, about 1 s left", line) for line in lines[:-1])
    assert lines[-1] == "gate: measurement 12/12 tests"


def test_a_measurement_stopped_by_ctrl_c_ends_its_line_and_says_it_starts_over(tmp_path, monkeypatch):
    project, data_dir = tiny_project(tmp_path / "project", tests=200), tmp_path / "data"
    data_dir.mkdir()
    stream = Stream(tty=True)
    children: list[process.Child] = []
    finish = process.Child.finish

    def interrupted(child: process.Child, on_line=None):
        children.append(child)
        waited = threading.Thread(target=finish, args=(child,), daemon=True)
        waited.start()
        deadline = time.monotonic() + 60
        while "gate: measurement" not in stream.getvalue() and time.monotonic() < deadline:
            waited.join(0.05)  # until the line is open: some tests done, most of the 10 s to go
        raise KeyboardInterrupt

    monkeypatch.setattr(process.Child, "finish", interrupted)
    with pytest.raises(Interrupted) as stopped:
        run_suite(project, data_dir, stream)
    assert str(stopped.value) == ("interrupted by Ctrl-C during the measurement, which is cached only once it "
                                  "completes: the next run starts it over")
    # the line, rewritten in place, is ended: the message the CLI prints next starts a line of its own
    assert re.fullmatch(r"(\r\033\[Kgate: measurement \d+/200 tests)+\n", stream.getvalue())
    assert children and all(child.popen.poll() is not None for child in children)


def test_sigterm_during_the_measurement_says_it_starts_over():
    with pytest.raises(Interrupted, match=r"^stopped by SIGTERM during the measurement, which is cached only once "
                                          r"it completes: the next run starts it over$"):
        with measurement_step._starts_over_if_stopped():
            raise Terminated


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_a_piped_gate_run_shows_the_measurements_progress(tmp_path):
    project = copy_fixture("strong", tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_CORE", "COVERAGE"))}
    done = subprocess.run([sys.executable, "-m", "gate", "--project", str(project), "--no-explain"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    start = lines.index("gate: running the suite under coverage (the measurement)")
    measured = [line for line in lines if line.startswith("gate: measurement ")]
    # its 6 quick tests may all finish before the first poll: at least the last line, 6 of 6
    assert measured and measured[-1] == "gate: measurement 6/6 tests"
    assert all(re.fullmatch(r"gate: measurement \d/6 tests", line) for line in measured)
    # together, right after the step's line and before the next step's
    assert lines[start + 1:start + 2 + len(measured)] == [*measured, "gate: generating mutants"]


@pytest.mark.slow  # a real gate run, stopped: the slow tier
def test_ctrl_c_during_a_real_gates_measurement_says_it_starts_over_on_a_line_of_its_own(fixture_project):
    """The whole path, signal to message: the gate's process group gets SIGINT mid-measurement."""
    project = fixture_project("strong")
    (project / "tests" / "test_slow.py").write_text("import time\n\n\ndef test_waits():\n    time.sleep(30)\n")
    child = subprocess.Popen([sys.executable, "-m", "gate", "--project", str(project), "--no-explain"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                             start_new_session=True)
    deadline = time.monotonic() + 60
    while not list((project / ".gate" / "coverage").glob("progress-*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    os.killpg(child.pid, signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, out + err
    assert err.splitlines()[-1] == ("gate: error [interrupted]: interrupted by Ctrl-C during the measurement, which "
                                    "is cached only once it completes: the next run starts it over")
    assert not (project / ".gate" / "coverage" / "measurement.json").exists()
