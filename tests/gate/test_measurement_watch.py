"""The measurement's progress, as the person at the terminal sees it: the progress files its
processes append to (`gate.wire.measurement`), read while the gate waits (`_Watch` in
`gate.steps.measurement`), shown by `gate.report.progress_line.TerminalProgress`, and the line a
stopped measurement leaves."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import pytest

from gate.errors import Interrupted, Terminated
from gate.report.progress_line import TerminalProgress
from gate.steps import measurement as measurement_step
from gate.wire import codec, measurement
from gate.wire.measurement import Collected, EnvironmentReads, Finished, MeasurementRecord
from tests.gate.conftest import REPO_ROOT, run_gate


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Heard:
    """A `Progress` that keeps what it heard of the measurement."""

    def __init__(self) -> None:
        self.measured: list[tuple[int, int, float | None]] = []
        self.ended = 0

    def stage(self, text: str) -> None:
        pass

    def measurement(self, done: int, total: int, seconds_left: float | None) -> None:
        self.measured.append((done, total, seconds_left))

    def mutant(self, outcome, done: int, total: int) -> None:
        pass

    def end_line(self) -> None:
        self.ended += 1


def test_piped_the_measurement_says_a_line_every_tenth():
    out = io.StringIO()
    progress = TerminalProgress(out)
    for done in range(0, 41):
        progress.measurement(done, 40, 40.0 - done)
    lines = out.getvalue().splitlines()
    assert lines[0] == "gate: measurement 0/40 tests, about 40 s left"
    assert lines[1] == "gate: measurement 4/40 tests, about 36 s left"
    assert lines[-1] == "gate: measurement 40/40 tests"  # done: no time left to tell
    assert len(lines) == 11


def test_on_a_terminal_one_line_is_rewritten_and_ended_before_anything_else():
    out = Terminal()
    progress = TerminalProgress(out)
    progress.measurement(3, 2900, 600.0)
    progress.measurement(4, 2900, 4000.0)
    assert out.getvalue() == ("\r\033[Kgate: measurement 3/2900 tests, about 10 min left"
                              "\r\033[Kgate: measurement 4/2900 tests, about 1 h 7 min left")
    progress.stage("generating mutants")  # a line of its own, never after the open status line
    assert out.getvalue().endswith("left\ngate: generating mutants\n")
    progress.end_line()  # nothing open: nothing written
    assert out.getvalue().endswith("mutants\n")


def test_an_interruption_is_printed_on_a_line_of_its_own():
    out = Terminal()
    progress = TerminalProgress(out)
    progress.measurement(1, 10, None)
    progress.end_line()
    out.write("gate: error [interrupted]: ...\n")
    assert out.getvalue() == "\r\033[Kgate: measurement 1/10 tests\ngate: error [interrupted]: ...\n"


def test_quiet_says_nothing_of_the_measurement():
    out = Terminal()
    TerminalProgress(out, quiet=True).measurement(1, 10, 5.0)
    assert out.getvalue() == ""


def record(durations: dict[str, float]) -> MeasurementRecord:
    return MeasurementRecord(key="k", durations=durations, seconds=1.0, imported=(), processes=1,
                             environment_digest="", environment=EnvironmentReads((), None))


def append(path, *messages) -> None:
    with path.open("a") as out:
        for message in messages:
            out.write(codec.dumps(message, measurement.PROGRESS_FORMAT) + "\n")


def test_the_watch_adds_up_the_processes_and_estimates_from_the_last_durations(tmp_path):
    one, two = tmp_path / "progress-1.jsonl", tmp_path / "progress-2.jsonl"
    heard = Heard()
    last = record({"a": 4.0, "b": 2.0, "c": 6.0})
    watch = measurement_step._Watch([one, two], last, heard)
    append(one, Collected(("a", "b")))
    watch.update()
    assert heard.measured == []  # the total is known once every process has collected
    append(two, Collected(("c", "new")))
    watch.update()
    # the slowest process's rest: c (6 s) and a new test (the mean, 4 s)
    assert heard.measured == [(0, 4, 10.0)]
    append(one, Finished("a"))
    with one.open("a") as out:
        out.write('{"kind": "Finished", "format": 1, "test": "b"')  # a line still being written waits
    watch.update()
    assert heard.measured[-1] == (1, 4, 10.0)
    with one.open("a") as out:
        out.write("}\n")
    append(two, Finished("c"))
    watch.update()
    assert heard.measured[-1] == (3, 4, 4.0)
    watch.update()
    assert len(heard.measured) == 3  # nothing new: nothing said again


def test_without_a_last_measurement_there_is_no_estimate(tmp_path):
    path = tmp_path / "progress-1.jsonl"
    heard = Heard()
    append(path, Collected(("a",)), Finished("a"))
    measurement_step._Watch([path], None, heard).update()
    assert heard.measured == [(1, 1, None)]


def test_a_progress_line_of_another_shape_is_kept_as_the_watchs_error(tmp_path):
    path = tmp_path / "progress-1.jsonl"
    path.write_text('{"kind": "Collected", "format": 1, "names": []}\n')
    watch = measurement_step._Watch([path], None, Heard())
    watch.update()
    assert isinstance(watch.error, codec.WireError) and "unknown field 'names'" in str(watch.error)


def test_the_watch_polls_on_its_own_thread_and_ends_the_line_on_the_way_out(tmp_path):
    path = tmp_path / "progress-1.jsonl"
    heard = Heard()
    with measurement_step._Watch([path], None, heard):
        append(path, Collected(("a", "b")), Finished("a"))
        deadline = time.monotonic() + 10
        while not heard.measured and time.monotonic() < deadline:
            time.sleep(0.05)
        assert heard.measured == [(1, 2, None)]
        append(path, Finished("b"))
    assert heard.measured[-1] == (2, 2, None)  # the last, read on the way out
    assert heard.ended == 1


@pytest.mark.parametrize("stop, said", [(KeyboardInterrupt(), "interrupted by Ctrl-C"),
                                        (Terminated(), "stopped by SIGTERM")])
def test_a_stopped_measurement_says_the_next_run_starts_it_over(stop, said):
    with pytest.raises(Interrupted) as raised:
        with measurement_step._starts_over_if_stopped():
            raise stop
    assert str(raised.value) == (f"{said} during the measurement, which is cached only once it completes: "
                                 "the next run starts it over")


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_a_real_run_shows_the_measurements_progress_when_piped(fixture_project):
    project = fixture_project("strong")
    run = run_gate(project, "--no-explain")  # run_gate passes -q: no progress at all
    assert run.exit_code == 0 and "gate: measurement" not in run.stderr
    done = subprocess.run([sys.executable, "-m", "gate", "--project", str(project), "--no-explain"],
                          capture_output=True, text=True, timeout=600, cwd=REPO_ROOT,
                          env={k: v for k, v in os.environ.items() if not k.startswith(("COV_CORE", "COVERAGE"))})
    assert done.returncode == 0, done.stdout + done.stderr
    # the cache holds the measurement now: it is reused, no test runs
    assert "reusing the cached measurement" in done.stderr and "gate: measurement" not in done.stderr
    (project / ".gate" / "coverage" / "measurement.json").unlink()
    again = subprocess.run([sys.executable, "-m", "gate", "--project", str(project), "--no-explain"],
                           capture_output=True, text=True, timeout=600, cwd=REPO_ROOT,
                           env={k: v for k, v in os.environ.items() if not k.startswith(("COV_CORE", "COVERAGE"))})
    assert again.returncode == 0, again.stdout + again.stderr
    lines = [line for line in again.stderr.splitlines() if line.startswith("gate: measurement ")]
    total = int(lines[-1].split("/")[1].split()[0])
    assert lines[-1] == f"gate: measurement {total}/{total} tests" and total >= 5, again.stderr


@pytest.mark.slow  # a real gate run, stopped: the slow tier
def test_ctrl_c_during_the_measurement_says_it_starts_over_on_a_line_of_its_own(fixture_project):
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
