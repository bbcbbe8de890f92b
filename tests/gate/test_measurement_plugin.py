"""The gate's pytest plugin in the measurement's processes (`gate.steps.measurement_plugin`): it is
told what to do by `--gate-*` options, and a bad one is pytest's usage error (exit 4) with a
one-line reason, never a silent default; its report is a typed `ImportReport`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gate.wire import codec, measurement
from gate.wire.codec import WireError
from gate.wire.measurement import ImportReport, SplitDurations
from tests.gate.conftest import REPO_ROOT

SUITE = "def test_one():\n    pass\n\n\ndef test_two():\n    pass\n"


def pytest_run(tmp_path, *options: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_suite.py").write_text(SUITE)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                           "gate.steps.measurement_plugin", *options, "test_suite.py"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True)


@pytest.mark.parametrize("split", ["2", "0/2", "3/2", "a/b", "1/"])
def test_a_bad_split_is_a_usage_error(tmp_path, split):
    done = pytest_run(tmp_path, f"--gate-split={split}")
    assert done.returncode == 4
    assert f"--gate-split {split!r}: expected K/N with 1 <= K <= N" in done.stderr


def test_a_durations_file_with_a_renamed_field_is_a_usage_error_naming_it(tmp_path):
    durations = tmp_path / "durations.json"
    data = json.loads(codec.dumps(SplitDurations({"test_suite.py::test_one": 1.0}), measurement.FORMAT))
    data["durations"] = data.pop("seconds")
    durations.write_text(json.dumps(data))
    done = pytest_run(tmp_path, "--gate-split=1/2", f"--gate-split-durations={durations}")
    assert done.returncode == 4
    assert "SplitDurations (format 1): unknown field 'durations'" in done.stderr


def test_a_missing_durations_file_is_a_usage_error(tmp_path):
    done = pytest_run(tmp_path, "--gate-split=1/2", f"--gate-split-durations={tmp_path / 'none.json'}")
    assert done.returncode == 4 and "none.json could not be read" in done.stderr


def test_the_shares_of_a_split_cover_the_suite_once(tmp_path):
    kept = []
    for k in (1, 2):
        done = pytest_run(tmp_path, f"--gate-split={k}/2", "-rA")
        assert done.returncode in (0, 5), done.stdout + done.stderr
        kept.append({line.split()[-1] for line in done.stdout.splitlines() if line.startswith("PASSED")})
    assert kept[0] | kept[1] == {"test_suite.py::test_one", "test_suite.py::test_two"} and not kept[0] & kept[1]


def test_the_import_report_names_where_a_guarded_module_came_from(tmp_path):
    out = tmp_path / "imports.json"
    done = pytest_run(tmp_path, "--gate-guarded-module=json", "--gate-guarded-module=not_imported",
                      f"--gate-import-report={out}")
    assert done.returncode == 0, done.stdout + done.stderr
    report = codec.read(ImportReport, out, measurement.FORMAT)
    assert report.guarded == {"json": json.__file__}
    assert "test_suite.py" in report.files


def test_an_import_report_with_a_renamed_field_fails_the_reader_naming_it(tmp_path):
    out = tmp_path / "imports.json"
    assert pytest_run(tmp_path, f"--gate-import-report={out}").returncode == 0
    data = json.loads(out.read_text())
    data["environment"]["names"] = data["environment"].pop("read")
    out.write_text(json.dumps(data))
    with pytest.raises(WireError, match=r"^ImportReport \(format 1\)\.environment: unknown field 'names'$"):
        codec.read(ImportReport, out, measurement.FORMAT)


def progress_lines(path) -> list[measurement.Collected | measurement.Finished]:
    """The progress file as the gate reads it: a `Collected` line, then a `Finished` line per test."""
    first, *rest = path.read_text().splitlines()
    return [codec.loads(measurement.Collected, first, measurement.PROGRESS_FORMAT),
            *(codec.loads(measurement.Finished, line, measurement.PROGRESS_FORMAT) for line in rest)]


def test_the_progress_file_says_what_was_collected_then_each_test_as_it_finishes(tmp_path):
    out = tmp_path / "progress.jsonl"
    done = pytest_run(tmp_path, f"--gate-progress={out}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert progress_lines(out) == [
        measurement.Collected(("test_suite.py::test_one", "test_suite.py::test_two")),
        measurement.Finished("test_suite.py::test_one"), measurement.Finished("test_suite.py::test_two")]


def test_a_split_process_reports_only_its_own_share(tmp_path):
    # the class-less tests of one module are one share's: the other process collects none
    collected = []
    for k in (1, 2):
        out = tmp_path / f"progress-{k}.jsonl"
        assert pytest_run(tmp_path, f"--gate-split={k}/2", f"--gate-progress={out}").returncode in (0, 5)
        first, *finished = progress_lines(out)
        assert [f.test for f in finished] == list(first.tests)  # each of its tests finishes, in order
        collected.append(first.tests)
    assert sorted(collected, key=len) == [(), ("test_suite.py::test_one", "test_suite.py::test_two")]


def test_without_the_option_no_progress_file_is_written(tmp_path):
    assert pytest_run(tmp_path).returncode == 0
    assert not list(tmp_path.glob("*.jsonl"))
