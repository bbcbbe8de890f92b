"""Files git ignores that the project's packages import (a version module hatch-vcs or
setuptools-scm writes at install) are in the gate's snapshot; caches, build output and the rest of
what git ignores are not. A suite that cannot import the snapshot's code, or collects no tests, is
a configuration error (exit 2) that says so, never a red suite."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gate.steps import measurement, snapshot
from tests.gate.conftest import digest_files, run_gate

VERSION = "src/stamp/_version.py"
MISSING = ("gate: error [config]: the suite cannot import stamp._version in the gate's snapshot "
           "(src/stamp/__init__.py:3): No module named 'stamp._version'")


def git(root: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True, check=True)


def committed(project: Path) -> Path:
    """`project` as a git repository with everything but what its .gitignore ignores committed."""
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "start")
    return project


def installed(project: Path, version: str = "1.2.3") -> Path:
    """What an install (hatch-vcs, setuptools-scm) leaves: the version module, which git ignores."""
    (project / VERSION).write_text(f'__version__ = "{version}"\n')
    return project


def versioned(fixture_project, *, install: bool = True) -> Path:
    project = fixture_project("versioned")
    (project / VERSION).unlink(missing_ok=True)  # the fixture holds none: the install writes it
    committed(project)
    return installed(project) if install else project


def write(root: Path, rel: str, text: str = "x = 1\n") -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


TRACKED = ["src/stamp/__init__.py", "src/stamp/core.py", "tests/__init__.py", "tests/test_core.py", "tools/run.py"]
# git-ignored, and what an import may need: in a package's folder, or beside the packages in src/
TAKEN_IN = ["src/_stamp_build.py", "src/stamp/_native.cpython-311-x86_64-linux-gnu.so", "src/stamp/_version.py",
            "src/stamp/data/table.json", "src/stamp/py.typed", "tests/generated_cases.py"]
# git-ignored and left out: caches, build output, other kinds, too large, outside every package
LEFT_OUT = ["src/stamp/__pycache__/core.cpython-311.pyc", "src/stamp.egg-info/SOURCES.txt",
            "src/stamp/build/lib/stamp/core.py", "src/stamp/model.safetensors", "src/stamp/run.log",
            "src/stamp/big.json", "src/deep/inner/x.py", ".env", "notes.txt", "build/lib/stamp/_version.py",
            "dist/stamp.whl.json", "tools/_local.py", "src/stamp/.mypy_cache/3.11/stamp.json"]


def test_the_snapshot_takes_in_the_ignored_files_the_packages_import_and_nothing_else(tmp_path):
    root = tmp_path / "project"
    for rel in TRACKED:
        write(root, rel)
    write(root, ".gitignore", "".join(f"/{rel}\n" for rel in TAKEN_IN + LEFT_OUT))
    committed(root)
    for rel in TAKEN_IN + LEFT_OUT:
        write(root, rel)
    with open(root / "src/stamp/big.json", "wb") as big:  # one byte over the cap
        big.truncate(snapshot.GENERATED_MAX_BYTES + 1)
    write(root, "src/stamp/new.py")  # untracked, not ignored: in, as before

    files = snapshot.project_files(root, [root / ".gate"])
    assert files == sorted(TRACKED + TAKEN_IN + [".gitignore", "src/stamp/new.py"])
    taken = snapshot.take(root, root / ".gate" / "work", [root / ".gate"])
    copy = root / ".gate" / "work" / "src/stamp/_version.py"
    assert copy.read_text() == "x = 1\n"
    assert copy.stat().st_mtime_ns == (root / "src/stamp/_version.py").stat().st_mtime_ns  # mutmut's mtime rule
    assert not (root / ".gate" / "work" / "src/stamp/model.safetensors").exists()
    assert taken.files == files


def test_a_changed_generated_file_changes_what_depends_on_it(tmp_path):
    root = tmp_path / "project"
    for rel in TRACKED:
        write(root, rel)
    write(root, ".gitignore", "/src/stamp/_version.py\n")
    committed(root)
    write(root, VERSION, '__version__ = "1.2.3"\n')
    work = root / ".gate" / "work"

    def measurement_key() -> str:
        taken = snapshot.take(root, work, [root / ".gate"])
        return measurement.key(work, taken.files, ["src/stamp/core.py"], ["tests"], [], "environment")

    before = measurement_key()
    assert measurement_key() == before  # nothing changed: a warm run
    write(root, VERSION, '__version__ = "1.2.4"\n')  # a new install, a new version
    assert measurement_key() != before
    assert (work / VERSION).read_text() == '__version__ = "1.2.4"\n'
    (root / VERSION).unlink()  # uninstalled: gone from the snapshot too
    snapshot.take(root, work, [root / ".gate"])
    assert not (work / VERSION).exists()


@pytest.mark.slow  # four gate runs
def test_a_generated_version_module_git_ignores_is_imported_from_the_snapshot(fixture_project):
    project = versioned(fixture_project)
    before = digest_files(project)
    run = run_gate(project)
    assert run.exit_code == 0, run.stdout + run.stderr
    counts = run.summary["counts"]
    assert counts["by_status"] == {"killed": counts["selected"]} and counts["selected"] >= 5
    [handler] = run.summary["regions"]
    assert handler["id"] == "src/stamp/banner.py:8"
    assert {m["file"] for m in run.mutants()} == {"src/stamp/banner.py"}
    assert digest_files(project) == before
    assert run_gate(project).summary["counts"]["cached"] == counts["selected"]  # nothing changed
    # rebuilt (same version, one more name in it): the mutants' tests import it, so they run again
    (project / VERSION).write_text('__version__ = "1.2.3"\nBUILD = 7\n')
    rerun = run_gate(project)
    assert rerun.exit_code == 0, rerun.stdout + rerun.stderr
    assert rerun.summary["counts"]["cached"] == 0
    # a new install's version is what the next run imports: the cached measurement does not hide it
    installed(project, "1.2.4")
    again = run_gate(project)
    assert again.exit_code == 3, again.stdout + again.stderr
    assert again.stderr.startswith("gate: error [red-suite]: the suite fails on unmutated code: "
                                   "tests/test_banner.py::test_the_generated_version_is_imported (AssertionError")


def test_a_package_that_imports_a_missing_module_is_a_config_error_naming_it(fixture_project):
    project = versioned(fixture_project, install=False)
    before = digest_files(project)
    run = run_gate(project)
    assert run.exit_code == 2, run.stdout + run.stderr
    assert run.stderr.strip() == MISSING
    assert (run.summary["verdict"], run.summary["exit_code"]) == ("error", 2)
    assert not (project / ".gate" / "coverage" / "measurement.json").exists()
    assert digest_files(project) == before


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_a_conftest_that_cannot_import_the_package_is_the_same_config_error(fixture_project):
    """Imported by a conftest file, the same failure is pytest's usage error (exit 4), not a collection error."""
    project = versioned(fixture_project, install=False)
    (project / "tests" / "conftest.py").write_text("import stamp\n")
    run = run_gate(project)
    assert run.exit_code == 2, run.stdout + run.stderr
    assert run.stderr.strip() == MISSING


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_a_test_module_that_imports_a_missing_module_is_a_red_suite(fixture_project):
    """The test's own import fails (a module deleted, a test not updated): the suite is broken, not the snapshot."""
    project = versioned(fixture_project)
    (project / "tests" / "test_gone.py").write_text("from stamp.gone import thing\n\n\ndef test_thing():\n"
                                                    "    assert thing\n")
    run = run_gate(project)
    assert run.exit_code == 3, run.stdout + run.stderr
    assert run.stderr.strip() == ("gate: error [red-suite]: the suite fails on unmutated code: tests/test_gone.py "
                                  "(E   ModuleNotFoundError: No module named 'stamp.gone')")


def test_an_empty_test_folder_is_a_config_error(fixture_project):
    project = versioned(fixture_project)
    for test in (project / "tests").iterdir():
        test.unlink()
    assert list((project / "tests").iterdir()) == []  # a real empty folder, which git does not keep
    before = digest_files(project)
    run = run_gate(project)
    assert run.exit_code == 2, run.stdout + run.stderr
    assert run.stderr.strip() == ("gate: error [config]: the suite collected no tests: tests is not there or is an "
                                  "empty folder, which the gate's snapshot does not copy: check [tool.gate] tests")
    assert (run.summary["verdict"], run.summary["exit_code"]) == ("error", 2)
    assert digest_files(project) == before


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_a_test_folder_with_no_test_in_it_is_a_config_error(fixture_project):
    project = versioned(fixture_project)
    (project / "tests" / "test_banner.py").unlink()
    (project / "tests" / "conftest.py").write_text("import stamp\n")
    run = run_gate(project)
    assert run.exit_code == 2, run.stdout + run.stderr
    assert run.stderr.strip() == ("gate: error [config]: the suite collected no tests (pytest exit 5) from tests: "
                                  "check [tool.gate] tests")
    assert not (project / ".gate" / "coverage" / "measurement.json").exists()
