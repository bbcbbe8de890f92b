"""Helpers for the gate's tests: copy a fixture project, run the real gate on it as a
subprocess, and digest the project's files to prove the gate left them untouched."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
GATE_OUTPUT = {".gate", "reports"}


@dataclass
class GateRun:
    exit_code: int
    stdout: str
    stderr: str
    project: Path

    @property
    def summary(self) -> dict:
        return json.loads((self.project / "reports" / "summary.json").read_text())

    def mutants(self) -> list[dict]:
        """Every mutant of the run, from the gate's full result (`reports/gate-result.json`)."""
        return json.loads((self.project / "reports" / "gate-result.json").read_text())["mutants"]


def copy_fixture(name: str, destination: Path, edits: dict[str, list[tuple[str, str]]] | None = None) -> Path:
    """A copy of `tests/fixtures/<name>`, with each (old, new) text replacement of `edits` applied."""
    project = destination / name
    shutil.copytree(FIXTURES / name, project, ignore=shutil.ignore_patterns("__pycache__", ".gate", "reports"))
    for rel, replacements in (edits or {}).items():
        path = project / rel
        text = path.read_text()
        for old, new in replacements:
            assert old in text, f"{old!r} is not in {rel}"
            text = text.replace(old, new)
        path.write_text(text)
    return project


def run_gate(project: Path, *args: str, timeout: float = 600, env: dict[str, str] | None = None,
             python: str | Path = sys.executable) -> GateRun:
    """`python -m gate --project PROJECT -q ARGS...`; `env` adds to (a value of None: removes from)
    this process's environment."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_CORE", "COVERAGE"))}
    for name, value in (env or {}).items():
        if value is None:
            full_env.pop(name, None)
        else:
            full_env[name] = value
    done = subprocess.run([str(python), "-m", "gate", "--project", str(project), "-q", *args],
                          capture_output=True, text=True, timeout=timeout, env=full_env)
    return GateRun(done.returncode, done.stdout, done.stderr, project)


def digest_files(project: Path) -> dict[str, str]:
    """Every file of the project but the gate's own output, with a hash of its bytes."""
    found = {}
    for path in sorted(project.rglob("*")):
        rel = path.relative_to(project)
        if path.is_file() and rel.parts[0] not in GATE_OUTPUT and "__pycache__" not in rel.parts:
            found[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def fixture_project(tmp_path):
    """copy_fixture bound to this test's temporary folder."""
    return lambda name, edits=None: copy_fixture(name, tmp_path, edits)
