"""`--changed [REF]`: which regions a change touches, from `git diff` (the staged changes by default).

A region is in scope when the function it lies in changed, or when a test that reaches it
changed (a weakened test must not slip through the commit hook). A change to a support file
(conftest, a test helper, the configuration) puts every region in scope.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from gate.coverage_step import CoverageResult
from gate.errors import ConfigError
from gate.regions import Region, read_source, unit_spans
from gate.settings import Settings

Scope = Callable[[list[Region], CoverageResult], set[str]]
HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", re.M)
SUPPORT_NAMES = {"conftest.py", "pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini", "mutmut_config.py"}


def changed_lines(root: Path, ref: str) -> dict[str, set[int]]:
    """Lines of the working tree that differ from `ref` ('' = the staged changes), per file.
    A pure deletion marks the lines on both sides of where the text was."""
    command = ["git", "diff", "--no-color", "--no-ext-diff", "--unified=0", "--relative"]
    command += ["--cached"] if ref == "" else [ref]
    try:
        out = subprocess.run(command, cwd=root, capture_output=True, text=True, check=True).stdout
    except FileNotFoundError:
        raise ConfigError("--changed needs git, which is not installed") from None
    except subprocess.CalledProcessError as exc:
        raise ConfigError(f"--changed: git diff failed: {exc.stderr.strip().splitlines()[-1:]}") from None
    lines: dict[str, set[int]] = {}
    for section in re.split(r"^diff --git ", out, flags=re.M)[1:]:
        target = re.search(r"^\+\+\+ (?:b/)?(.+)$", section, re.M)
        if target is None or target.group(1) == "/dev/null":
            continue
        touched = lines.setdefault(target.group(1), set())
        for match in HUNK.finditer(section):
            start, count = int(match.group(1)), int(match.group(2) or "1")
            touched.update(range(start, start + count) if count else (start, start + 1))
    return lines


def changed_scope(settings: Settings) -> Scope:
    """The scope function `run_gate` calls once coverage has said which tests reach which region."""
    changes = changed_lines(settings.root, settings.changed or "")

    def scope(regions: list[Region], coverage: CoverageResult) -> set[str]:
        guarded = {r.file for r in regions}
        if any(Path(f).name in SUPPORT_NAMES or _is_test_support(f) for f in changes):
            return {r.id for r in regions}
        changed_units = {(f, unit) for f in guarded & set(changes)
                         for unit in _units_touched(settings.root / f, changes[f])}
        changed_tests = _changed_tests(settings.root, changes, coverage)
        picked = set()
        for report in coverage.regions:
            region = report.region
            if (region.file, region.unit) in changed_units or changed_tests & set(report.tests):
                picked.add(region.id)
        return picked

    return scope


def _is_test_support(path: str) -> bool:
    """A Python file beside the tests that is not itself a test module: a helper they import."""
    p = Path(path)
    return p.suffix == ".py" and not _is_test_module(p) and any(part in ("tests", "test") for part in p.parts)


def _is_test_module(path: Path) -> bool:
    return path.name.startswith("test_") or path.name.endswith("_test.py")


def _units_touched(path: Path, lines: set[int]) -> set[str | None]:
    """Top-level functions and methods of top-level classes that hold a changed line; None for
    module-level code (which stands for the whole file)."""
    if not path.exists():
        return set()
    spans = list(unit_spans(read_source(path)))
    touched: set[str | None] = set()
    for line in lines:
        hits = [name for name, start, end in spans if start <= line <= end]
        touched.update(hits or [None])
    return touched


def _changed_tests(root: Path, changes: dict[str, set[int]], coverage: CoverageResult) -> set[str]:
    """Node ids of the tests whose code changed; every test of a file whose shared code changed."""
    all_tests = set(coverage.baseline.durations)
    picked = set()
    for file, lines in changes.items():
        if not _is_test_module(Path(file)):
            continue
        touched = _units_touched(root / file, lines)
        # module code, a fixture or a helper method changed: any test of the file may behave differently
        shared_changed = any(unit is None or not unit.rsplit(".", 1)[-1].startswith("test") for unit in touched)
        for test in (t for t in all_tests if t.split("::", 1)[0] == file):
            qualname = ".".join(part.split("[", 1)[0] for part in test.split("::")[1:])
            if shared_changed or qualname in touched:
                picked.add(test)
    return picked
