"""The import walls of pyproject.toml (`[tool.importlinter]`): they hold on this tree, each of them
breaks on the import it forbids, and the reporters' wall names every module of the gate but the
result types, so that a new module cannot slip past it."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import gate

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = {c["name"]: c for c in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
             ["contracts"]}


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the packages and the contracts under `root`."""
    return subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()",
                           "--no-cache"],
                          cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_the_walls_hold():
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in done.stdout


# forbidden imports: (the wall that must catch it, the module that gets it, the import line)
BREACHES = [
    ("the engine does not import the gate", "shardengine/__init__.py", "import gate.result"),
    ("the gate does not import the engine", "gate/rules.py", "import shardengine"),
    ("mutmut is imported by the adapter's internals module alone", "gate/mutmut_adapter/mutate.py",
     "import mutmut.mutation.file_mutation"),
    ("mutmut is imported by the adapter's internals module alone", "gate/mutmut_adapter/client.py",
     "import mutmut.configuration"),
    ("the gate's process never loads the adapter's driver side or mutmut", "gate/run.py",
     "import gate.mutmut_adapter.driver"),
    ("the gate's process never loads the adapter's driver side or mutmut", "gate/steps/plan.py",
     "from gate.mutmut_adapter import run_state"),
    ("reporters import nothing of the gate but the result types", "gate/report/sarif.py", "import gate.settings"),
]


def test_every_wall_has_a_breach_to_catch():
    assert {contract for contract, _, _ in BREACHES} == set(CONTRACTS)


@pytest.mark.parametrize("contract, module, line", BREACHES)
def test_each_wall_breaks_on_the_import_it_forbids(contract, module, line, tmp_path):
    for package in ("gate", "shardengine"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # the breach\n")
    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{contract} BROKEN" in done.stdout


def test_the_reporters_wall_names_every_other_module_of_the_gate():
    modules = {f"gate.{m.name}" for m in pkgutil.iter_modules(gate.__path__)}
    allowed = {"gate.result", "gate.verdict", "gate.report"}
    forbidden = set(CONTRACTS["reporters import nothing of the gate but the result types"]["forbidden_modules"])
    assert forbidden == modules - allowed
