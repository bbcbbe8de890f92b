"""What of the environment a cached result depends on (`gate.environment`), and how the measurement's
process records what the suite read (`gate.steps.environment_probe`)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from gate.environment import read_key
from gate.wire import codec, measurement
from gate.wire.measurement import ImportReport
from tests.gate.conftest import REPO_ROOT

BASE = {"HOME": "/home/me", "STORE_MODE": "fast", "GITHUB_RUN_ID": "1", "EDITOR": "vi"}


def changed(**values: str | None) -> dict[str, str]:
    environ = dict(BASE)
    for name, value in values.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return environ


@pytest.mark.parametrize("read, whole, change, kept", [
    (["STORE_MODE"], None, {"STORE_MODE": "slow"}, False),  # a variable read by name
    (["STORE_MODE"], None, {"STORE_MODE": None}, False),  # unset now
    (["STORE_SKIP"], None, {"STORE_SKIP": "1"}, False),  # read while absent, set now
    (["STORE_MODE"], None, {"EDITOR": "emacs"}, True),  # never read
    (["STORE_MODE"], None, {"GITHUB_RUN_ID": "2"}, True),
    ([], None, {"OMP_NUM_THREADS": "1"}, False),  # read by native code, where no hook sees it
    ([], None, {"PYTHONHASHSEED": "0"}, False),  # read before any plugin runs
    ([], "the suite starts a process", {"EDITOR": "emacs"}, False),  # a child may read anything
    ([], "the suite starts a process", {"GITHUB_RUN_ID": "2"}, True),  # but not a CI run's number
    (["GITHUB_RUN_ID"], "the suite iterates over os.environ", {"GITHUB_RUN_ID": "2"}, False),  # unless read by name
    ([], None, {"COVERAGE_FILE": "/elsewhere"}, True),  # the gate's own
])
def test_the_key_holds_what_the_suite_can_read(read, whole, change, kept):
    assert (read_key(read, whole, changed(**change)) == read_key(read, whole, BASE)) is kept


SUITE = '''\
import os
import subprocess
import sys
from unittest import mock

import pytest


@pytest.mark.skipif(bool(os.environ.get("STORE_SKIP_SLOW")), reason="slow")
def test_reads():
    assert os.getenv("STORE_MODE", "fast") and "STORE_FLAG" not in os.environ


def test_patches():
    {patch}
'''


@pytest.mark.slow  # three pytest processes: the slow tier (.ci/run runs it)
@pytest.mark.parametrize("patch, whole", [
    ("pass", None),
    ("with mock.patch.dict(os.environ, {'STORE_MODE': 'slow'}):\n        pass", "the suite iterates over os.environ"),
    ("subprocess.run([sys.executable, '-c', 'pass'], check=True)",
     "the suite starts a process, which inherits the environment"),
])
def test_the_measurement_records_the_variables_read_by_name(tmp_path, patch, whole):
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(SUITE).replace("{patch}", patch))
    out = tmp_path / "imports.json"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "STORE_UNREAD": "x"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                           "gate.steps.measurement_plugin", f"--gate-import-report={out}", "test_suite.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    recorded = codec.read(ImportReport, out, measurement.FORMAT).environment
    assert {"STORE_SKIP_SLOW", "STORE_MODE", "STORE_FLAG"} <= set(recorded.read)
    assert recorded.whole == whole
    # what an iteration (mock.patch.dict's copy and restore) reads of every value is no read by name
    assert "STORE_UNREAD" not in recorded.read
