"""`--changed [REF]`: which regions a change touches, from `git diff` (the staged changes by default).

A region is in scope when the function it lies in changed, when that function can reach a changed
one by name or its covering tests in the last full run executed a function that can
(`ChangeScope.with_dependents`; with no last full run, every region is), or when a test that reaches
it changed (a weakened test must not slip through the commit hook). A change to module-level code
of a guarded file puts that file in scope. Whatever the plan cannot map to functions widens the
scope to every region, and says why: a deleted or renamed file (a rename is a deletion and an
addition), a changed module that is not guarded (guarded code may import it), a data file the tests
may read, a support file (conftest, a test helper, a module named like a test module that defines
no test, the configuration). Only documentation (`.md`, `.rst`) and test modules outside the gate's
suite are left out. The scope is never shrunk to nothing by what the plan does not understand.

To stay fast, an incremental run measures coverage only with the tests that reached the functions
in scope in the last full run (`UnitIndex`) and the changed test files; for a function that index
does not know, it runs the whole suite.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from gate.errors import ConfigError
from gate.result import RegionReport
from gate.settings import require_git_repository
from gate.steps.cache import Unit, reachable
from gate.steps.regions import read_source, unit_spans
from gate.steps.snapshot import is_documentation, is_test_module, is_within, test_unit

HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", re.M)


def _git_diff(root: Path, ref: str, *options: str, paths: Sequence[str] = ()) -> str:
    # fixed prefixes and unquoted names, whatever the user's git configuration says
    # and no rename detection: a renamed file is the deletion of one path and the addition of another
    command = ["diff", "--no-color", "--no-ext-diff", "--relative",
               "--no-renames", "--src-prefix=a/", "--dst-prefix=b/", *options]
    command += ["--cached"] if ref == "" else [ref]
    command += ["--", *paths] if paths else []
    return _git(root, command)


def _git(root: Path, command: list[str]) -> str:
    """`git COMMAND`'s output (names unquoted, whatever the user's configuration says); its failure
    as one line: git's first complaint (`fatal: bad revision 'x'`), never the usage text that
    follows some of them."""
    try:
        return subprocess.run(["git", "-c", "core.quotepath=off", *command], cwd=root, capture_output=True,
                              text=True, check=True).stdout
    except FileNotFoundError:
        raise ConfigError("--changed needs git, which is not installed") from None
    except subprocess.CalledProcessError as exc:
        first = next((line.strip() for line in exc.stderr.splitlines() if line.strip()), f"exit {exc.returncode}")
        raise ConfigError(f"--changed: git {command[0]} failed: {first}") from None


def _deleted_files(root: Path, ref: str) -> list[str]:
    return [f for f in _git_diff(root, ref, "--name-only", "-z", "--diff-filter=D").split("\0") if f]


def changed_lines(root: Path, ref: str) -> dict[str, set[int]]:
    """Lines of the working tree that differ from `ref`, for every changed file that still exists
    (a file whose change has no lines, a binary or a mode change, is there with none; an untracked
    file, which the gate's snapshot holds, with all of its lines). For '' (the staged changes;
    untracked files are left out, being no part of the commit) these are the lines of the staged
    files that differ from HEAD, as they are in the working tree, which is what the gate tests:
    under pre-commit, which sets unstaged changes aside, the staged changes themselves. A pure
    deletion marks the lines on both sides of where the text was."""
    require_git_repository(root)  # outside one, `git diff` is `--no-index`, and its answer its usage text
    if ref == "":
        changed = [f for f in _git_diff(root, "", "--name-only", "-z").split("\0") if f]
        if not changed:
            return {}
        out = _git_diff(root, _head_or_empty_tree(root), "--unified=0", paths=changed)
        untracked: list[str] = []
    else:
        changed = [f for f in _git_diff(root, ref, "--name-only", "-z").split("\0") if f]
        out = _git_diff(root, ref, "--unified=0")
        untracked = _untracked_files(root)
    deleted = set(_deleted_files(root, ref))
    lines: dict[str, set[int]] = {f: set() for f in changed if f not in deleted}
    for new in untracked:  # in the tree the gate tests, and not in REF: every line of it is new
        lines[new] = set(range(1, _line_count(root / new) + 1))
    for section in re.split(r"^diff --git ", out, flags=re.M)[1:]:
        target = re.search(r"^\+\+\+ b/(.+)$", section, re.M)
        if target is None:  # deleted: `+++ /dev/null`
            continue
        touched = lines.setdefault(target.group(1), set())
        for match in HUNK.finditer(section):
            start, count = int(match.group(1)), int(match.group(2) or "1")
            touched.update(range(start, start + count) if count else (start, start + 1))
    return lines


def _untracked_files(root: Path) -> list[str]:
    """Files git does not track but does not ignore either: the snapshot holds them."""
    out = _git(root, ["ls-files", "-z", "--others", "--exclude-standard"])
    return [f for f in out.split("\0") if f]


def _line_count(path: Path) -> int:
    try:
        return max(1, path.read_bytes().count(b"\n"))
    except OSError:
        return 1


def _head_or_empty_tree(root: Path) -> str:
    """HEAD, or git's empty tree before the first commit."""
    head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=root, capture_output=True, text=True)
    if head.returncode == 0:
        return "HEAD"
    return _git(root, ["hash-object", "-t", "tree", "/dev/null"]).strip()


@dataclass(frozen=True)
class UnitIndex:
    """Which tests reached each function in the last full-suite run: what lets `--changed` run
    only the tests of the functions a change touched."""

    tests_by_unit: dict[tuple[str, str], frozenset[str]]


def write_unit_index(data_dir: Path, tests_for: Callable[[str, int, int], Iterable[str]],
                     sources: dict[str, str]) -> None:
    """The index of a full run: `tests_for(file, first line, last line)` gives the tests that ran those lines."""
    units = {}
    for file, source in sources.items():
        for name, start, end in unit_spans(source):
            units[f"{file}::{name}"] = sorted(tests_for(file, start, end))
    (data_dir / "units.json").write_text(json.dumps(units))


def load_unit_index(data_dir: Path) -> UnitIndex | None:
    try:
        units = json.loads((data_dir / "units.json").read_text())
    except (OSError, ValueError):
        return None
    return UnitIndex({tuple(key.split("::", 1)): frozenset(tests) for key, tests in units.items()})


@dataclass(frozen=True)
class ChangeScope:
    widened: tuple[str, ...]
    """Why every region is in scope (`shop/rates.py changed`), if something the plan cannot map to
    functions changed; empty otherwise."""
    units: frozenset[tuple[str, str | None]]
    """(guarded file, unit) of each changed function (and, `with_dependents`, of each whose results
    depend on one); unit None: the file's module-level code."""
    test_files: frozenset[str]
    """Changed test modules of the gate's suite (a changed test the full gate never runs is out)."""
    lines: dict[str, set[int]]
    tree: Path
    """Where the changed files are read: the gate's snapshot of the working tree."""
    options: tuple[str, ...]
    """The suite's pytest arguments that select no tests themselves (`-m x`, `-k y`): kept for a subset."""

    @property
    def everything(self) -> bool:
        return bool(self.widened)

    def with_dependents(self, index: UnitIndex | None, callees: Mapping[Unit, frozenset[Unit]]) -> ChangeScope:
        """This change with every guarded function whose mutants' results depend on a changed one,
        by the rule the result cache keys them by (`gate.steps.cache`): it can reach a changed
        function by name, or its covering tests in the last full run executed one that can (a
        callee that no longer raises makes its caller's handler dead). With no last full run to
        say which tests executed what, every region is in scope."""
        changed = {(f, u) for f, u in self.units if u is not None}
        if self.everything or not changed:
            return self
        if index is None:
            return replace(self, widened=("no last full run says which tests executed the changed functions",))
        callers: dict[Unit, set[Unit]] = {}  # the graph reversed: who may call each unit
        for caller, called in callees.items():
            for callee in called:
                callers.setdefault(callee, set()).add(caller)
        reaching = reachable(changed, {unit: frozenset(found) for unit, found in callers.items()})
        executing = frozenset().union(*(index.tests_by_unit.get(unit, frozenset()) for unit in reaching))
        dependents = {unit for unit, tests in index.tests_by_unit.items() if tests & executing}
        return replace(self, units=self.units | reaching | dependents)

    def tests_to_run(self, index: UnitIndex | None) -> tuple[str, ...] | None:
        """The pytest arguments of a measurement that is enough for this change; None: the whole suite."""
        if not (self.everything or self.units or self.test_files):
            return ()
        if self.everything or index is None or any(unit is None for _, unit in self.units):
            return None
        tests: set[str] = set(self.test_files)
        for key in self.units:
            if key not in index.tests_by_unit:
                return None  # a function the last full run did not know: nobody knows its tests
            tests |= index.tests_by_unit[key]
        if not tests:  # no test reached the changed functions: the whole suite shows their regions unrun
            return None
        return (*self.options, *sorted(tests))

    def in_scope(self, reports: Iterable[RegionReport], suite_tests: Iterable[str]) -> list[RegionReport]:
        """The regions this change touches, once coverage has run (`suite_tests`: the measurement's tests)."""
        if self.everything:
            return list(reports)
        whole_files = {f for f, unit in self.units if unit is None}
        changed_tests = self._changed_tests(suite_tests)
        return [report for report in reports
                if report.region.file in whole_files or (report.region.file, report.region.unit) in self.units
                or changed_tests & set(report.tests)]

    def notes(self, outside: int) -> list[str]:
        """What a reader should know about this run's scope, with `outside` regions left out of it."""
        if self.widened:
            shown = "; ".join(self.widened[:5])
            more = f" and {len(self.widened) - 5} more" if len(self.widened) > 5 else ""
            return [f"--changed widened to every region: {shown}{more}"]
        return [f"{outside} regions outside this run's scope (--changed)"]

    def _changed_tests(self, suite_tests: Iterable[str]) -> set[str]:
        """Node ids of the tests whose code changed; every test of a file whose shared code changed."""
        picked = set()
        for file in self.test_files:
            touched = _units_touched(self.tree / file, self.lines[file])
            # module code, a fixture or a helper method changed: any test of the file may behave differently
            shared = any(unit is None or not unit.rsplit(".", 1)[-1].startswith("test") for unit in touched)
            for test in (t for t in suite_tests if t.split("::", 1)[0] == file):
                qualname = test_unit(test)[1]
                if shared or qualname in touched:
                    picked.add(test)
        return picked


def read_change(root: Path, tree: Path, ref: str, guarded: list[str], suite: list[str],
                own: tuple[Path, ...] = ()) -> ChangeScope:
    """What changed against `ref` in the git work tree `root`, read from its snapshot `tree`;
    `suite` is the pytest arguments of the gate's suite ([tool.gate] tests). Files in `own` (the
    gate's cache and reports folders, which no snapshot holds) are no change to check."""
    lines = {f: found for f, found in changed_lines(root, ref).items() if not _inside(root / f, own)}
    selectors = _selectors(suite, tree)
    options = tuple(a for a in suite if a not in selectors)
    guarded_set = set(guarded)
    test_files = frozenset(f for f in lines if is_test_module(Path(f)) and (tree / f).exists()
                           and _selected(f, selectors) and _holds_tests(tree / f))
    widened = [f"{f} was deleted" for f in _deleted_files(root, ref)
               if not is_documentation(f) and not _inside(root / f, own)]
    widened += [f"{f} changed" for f in sorted(lines) if f not in guarded_set and f not in test_files
                and not is_documentation(f) and not (is_test_module(Path(f)) and not _selected(f, selectors))]
    units = frozenset((f, unit) for f in guarded_set & set(lines) for unit in _units_touched(tree / f, lines[f]))
    return ChangeScope(widened=tuple(widened), units=units, test_files=test_files, lines=lines, tree=tree,
                      options=options)


def _holds_tests(path: Path) -> bool:
    """Whether a module named like a test module defines a test (a `test*` function or a `Test*`
    class); one that does not is a helper the other tests import, which changes every test that
    imports it. A module that cannot be parsed counts as a test module: its run shows the error."""
    try:
        module = ast.parse(read_source(path))
    except (SyntaxError, ValueError):
        return True
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")
               or isinstance(node, ast.ClassDef) and node.name.startswith("Test") for node in module.body)


def _inside(path: Path, folders: tuple[Path, ...]) -> bool:
    return any(is_within(path, folder) for folder in folders)


def _selectors(suite: list[str], tree: Path) -> list[str]:
    """The suite's arguments that name test paths. One right after an option is taken for that
    option's value (`--deselect PATH`); at worst that keeps a path in the options, so a subset
    runs more tests than it needs, never fewer."""
    return [a for i, a in enumerate(suite)
            if not a.startswith("-") and not (i and suite[i - 1].startswith("-") and "=" not in suite[i - 1])
            and (tree / a.split("::", 1)[0]).exists()]


def _selected(test_file: str, selectors: list[str]) -> bool:
    """Whether the suite's path arguments take in this test module (no path arguments: all do)."""
    if not selectors:
        return True
    path = Path(test_file)
    return any(path == Path(s.split("::", 1)[0]) or Path(s) in path.parents for s in selectors)


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
