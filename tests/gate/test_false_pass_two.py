"""Never a false pass, round two: what a hostile review built against the equivalence rules, the
cache, `--changed`, the merge and the ratchet. In each case a warm, `--changed`, merged or baselined
run (or a rule that drops a mutant unseen) once passed where a cold full run of the same tree
fails; each test reproduces it through `python -m gate` on a project of a few lines, and its
docstring names the rule it pins. The number in each section is the case of the issue it closes.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.gate.conftest import run_gate

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
