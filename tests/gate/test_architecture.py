"""The import walls of pyproject.toml (`[tool.importlinter]`): they hold on this tree, each of them
breaks on the import it forbids, and the reporters' wall names every module of the gate but the
result types, so that a new module cannot slip past it. And no function of the gate is longer
than `MOST_LINES`."""

from __future__ import annotations

import ast
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
    ("the messages between the gate's processes are gate.wire's alone", "gate/mutmut_adapter/runner.py",
     "import json"),
    ("the messages between the gate's processes are gate.wire's alone", "gate/steps/explain.py",
     "from json import loads"),
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


MOST_LINES = 60
"""The longest a function (or method) of the gate may be, its decorators and docstring included."""


def long_functions(root: Path) -> list[str]:
    """`file:line name (N lines)` for each function under `root` longer than MOST_LINES."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = node.end_lineno - start + 1
                if lines > MOST_LINES:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_of_the_gate_is_over_60_lines():
    assert long_functions(REPO / "gate") == []


def test_the_length_check_sees_a_long_function(tmp_path):
    package = tmp_path / "gate"
    package.mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(MOST_LINES))
    (package / "long.py").write_text(f"def short():\n    pass\n\n\n@decorated\ndef long():\n{body}")
    assert long_functions(package) == [f"gate/long.py:6 long ({MOST_LINES + 2} lines)"]
