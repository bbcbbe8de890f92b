"""Cached mutant results: a result is reused only while everything it depends on is unchanged.

A mutant's key hashes what can change its outcome:
- the mutant itself: its function, operator and change, without its line numbers (a line added
  above the function does not change it);
- the source of every guarded function its covering tests executed in the measurement (coverage.py's
  per-test contexts: when `clear_model` calls `model.clear_cache`, a change to either re-runs the
  other's mutants), of every guarded function run outside a test's own call (at collection, in a
  fixture's setup or teardown: a shared fixture runs for whichever test comes first, and for each
  mutant's run again), and of every guarded function reachable from those or from the mutant's own
  function, however many calls deep: named in one (called, handed on as a callback, a class
  instantiated), or a special method of its class (`with`, operators and `repr` call those
  unnamed). The mutant may reach code the measurement never ran: in its own function, or one frame
  up, when an exception it lets escape enters a caller's handler;
- the module-level code of every guarded file (it runs at import, for every test);
- the covering tests: their node ids and their own source; everything in the suite's test modules
  that is not a test standing alone (module code, fixtures, helpers, base classes: any test may use
  them); a test whose own source cannot be told apart (inherited, or of a class deriving from a
  test class of the suite) counts with all of the suite's test modules;
- the support files the suite may read: every project module it imported, every file under the
  folders that hold its tests, and every other file that is not Python or documentation;
- the settings that decide how the tests run, the gate's version and the environment.

A changed function re-runs the mutants whose covering tests execute it or whose functions can reach it, a
changed test re-runs the mutants it covers, and a weakened test cannot hide behind a cached kill.
What is not part of the key: a guarded function reached only through a name no reachable function
spells (`getattr(obj, name)`, a function looked up in a registry filled elsewhere).
"""


from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from gate.files import write_atomic
from gate.steps.regions import UnitShape, unit_shapes
from gate.steps.snapshot import test_unit

CACHE_VERSION = 2


@dataclass(frozen=True)
class CachedResult:
    key: str
    file: str
    unit: str
    status: str
    killed_by: str | None
    seconds: float
    detail: str


class ResultCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, CachedResult] = {}

    def load(self) -> ResultCache:
        try:
            data = json.loads(self.path.read_text())
            if data.get("version") == CACHE_VERSION:
                self.entries = {name: CachedResult(**entry) for name, entry in data["entries"].items()}
        except (OSError, ValueError, TypeError, KeyError):
            self.entries = {}  # a missing or damaged cache only costs a re-run
        return self

    def get(self, name: str, key: str) -> CachedResult | None:
        entry = self.entries.get(name)
        return entry if entry is not None and entry.key == key else None

    def put(self, name: str, result: CachedResult) -> None:
        self.entries[name] = result

    def save(self) -> None:
        write_atomic(self.path, json.dumps({"version": CACHE_VERSION,
                                            "entries": {n: asdict(e) for n, e in sorted(self.entries.items())}}))


Unit = tuple[str, str]
"""(guarded file, `Class.method` or `function`)."""


@dataclass(frozen=True)
class CacheKeys:
    """Hashes of what results depend on, computed once per run."""

    common: str
    """The settings, the environment, the support files, the module-level code of every guarded
    file, and everything in the suite's test modules that is not a test of its own."""
    units: Mapping[Unit, str]
    """Each guarded function's source, hashed."""
    unit_starts: Mapping[Unit, int]
    units_by_test: Mapping[str, frozenset[Unit]]
    """The guarded functions each test executed in the measurement."""
    always: frozenset[Unit]
    """Guarded functions run outside any one test's own call (at collection, in a fixture's setup
    or teardown, which a shared fixture does for whichever test comes first): every key has them."""
    callees: Mapping[Unit, frozenset[Unit]]
    """The guarded functions each guarded function may call: those it names (whether the measurement
    ran the call or not), and the special methods of its own class (`with`, operators and `repr`
    call them without naming them)."""
    test_files: Mapping[str, SuiteModule]
    all_tests: str
    """All the suite's test modules, hashed: for a test whose own source cannot be told apart."""

    def depends_on(self, file: str, unit: str, tests: Iterable[str]) -> set[Unit]:
        """The guarded functions a mutant of `file`'s `unit` with these covering tests depends on:
        its own, those its tests executed, those run for every test, and every function reachable
        from them (the mutant may reach a call the measurement never made, in its own function or
        one frame up: an exception it lets escape enters a caller's handler the measurement never ran)."""
        executed = {(file, unit), *self.always}.union(*(self.units_by_test.get(t, frozenset()) for t in tests))
        return reachable(executed, self.callees)

    def key(self, name: str, file: str, unit: str, start: int, diff: str, tests: Iterable[str]) -> str:
        tests = sorted(tests)
        # the change as the function sees it: lines counted from the function's first line
        where = start - self.unit_starts.get((file, unit), 0)
        parts = [name, str(where), HUNK_HEADER.sub("@@", diff), self.common,
                 *(f"{t}={self._test_digest(t)}" for t in tests),
                 *(f"{f}::{u}={self.units.get((f, u), '')}" for f, u in sorted(self.depends_on(file, unit, tests)))]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def _test_digest(self, nodeid: str) -> str:
        file, unit = test_unit(nodeid)
        found = self.test_files.get(file)
        own = found.tests.get(unit) if found is not None else None
        return own if own is not None else self.all_tests


@dataclass(frozen=True)
class SuiteModule:
    """A test module's source, hashed in parts: each of its collected tests that stands alone (a
    function, or a method of a class that derives from no test class of the suite) by itself, and
    everything else together."""

    shared: str
    tests: Mapping[str, str]

    @classmethod
    def of(cls, source: str, shapes: list[UnitShape], collected: set[str], test_classes: set[str]) -> SuiteModule:
        def alone(shape: UnitShape) -> bool:
            return shape.name in collected and not set(shape.bases) & test_classes

        tests, shared = _split(source, shapes, alone)
        return cls(shared=shared, tests=tests)


def _split(source: str, shapes: list[UnitShape], separate: Callable[[UnitShape], bool] = lambda shape: True
           ) -> tuple[dict[str, str], str]:
    """A hash of each of `shapes` (the source's units) that `separate` picks (of all units of that
    name, should there be several),
    and one of every other line together but blank and comment-only ones (so that a comment or a
    blank line added between functions moves them without changing anything)."""
    lines = source.splitlines()
    parts: dict[str, str] = {}
    rest = set(range(1, len(lines) + 1))
    for shape in shapes:
        if separate(shape):
            text = "\n".join(lines[shape.start - 1:shape.end])
            parts[shape.name] = _digest(parts.get(shape.name, "") + text)
            rest -= set(range(shape.start, shape.end + 1))
    code = [lines[i - 1] for i in sorted(rest) if lines[i - 1].strip() and not lines[i - 1].lstrip().startswith("#")]
    return parts, _digest("\n".join(code))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


HUNK_HEADER = re.compile(r"^@@ [^@]* @@", re.M)


def callee_graph(shapes_of: Mapping[str, list[UnitShape]]) -> dict[Unit, frozenset[Unit]]:
    """The guarded functions each guarded function (of the files' `unit_shapes`) may call: those it
    names (called, handed on as a callback; a class named reaches its methods), and the special
    methods of its own class (`with`, operators and `repr` call them without naming them)."""
    by_name: dict[str, set[Unit]] = {}
    special: dict[tuple[str, str], set[Unit]] = {}  # (file, class) -> its `__dunder__` methods
    for file, shapes in shapes_of.items():
        for shape in shapes:
            unit = (file, shape.name)
            by_name.setdefault(shape.name.rsplit(".", 1)[-1], set()).add(unit)
            owner, _, method = shape.name.rpartition(".")
            if owner:  # a class named (instantiated, subclassed) reaches its methods
                by_name.setdefault(owner.split(".", 1)[0], set()).add(unit)
                if method.startswith("__") and method.endswith("__"):
                    special.setdefault((file, owner), set()).add(unit)
    return {(file, shape.name): frozenset().union(*(by_name.get(n, set()) for n in shape.names),
                                                  special.get((file, shape.name.rpartition(".")[0]), set()))
            for file, shapes in shapes_of.items() for shape in shapes}


def reachable(start: Iterable[Unit], callees: Mapping[Unit, frozenset[Unit]]) -> set[Unit]:
    """`start` and every unit reachable from it through `callees`, however many calls deep."""
    found, todo = set(start), list(start)
    while todo:
        for callee in callees.get(todo.pop(), ()):
            if callee not in found:
                found.add(callee)
                todo.append(callee)
    return found


def build_cache_keys(sources: Mapping[str, str], tests_by_line: Mapping[str, Mapping[int, Iterable[str]]],
                     shared_lines: Mapping[str, Iterable[int]], test_sources: Mapping[str, str],
                     collected: Iterable[str], support: str, settings: str) -> CacheKeys:
    """The cache keys of a run: `sources` are the guarded files' texts, `tests_by_line` the
    measurement's per-line tests (file -> line -> node ids), `shared_lines` the lines it ran outside
    any test's own call, `test_sources` the suite's test modules' texts, `collected` the measurement's
    node ids, `support` a digest of the support files."""
    units: dict[Unit, str] = {}
    starts: dict[Unit, int] = {}
    module_code = hashlib.sha256()
    units_by_test: dict[str, set[Unit]] = {}
    always: set[Unit] = set()
    shapes_of = {file: unit_shapes(sources[file]) for file in sources}
    for file in sorted(sources):
        shapes = shapes_of[file]
        parts, rest = _split(sources[file], shapes)
        module_code.update(f"{file}\0{rest}\0".encode())
        body_of_line: dict[int, Unit] = {}
        for shape in shapes:
            unit = (file, shape.name)
            units[unit], starts[unit] = parts[shape.name], shape.start
            # a function's body: its `def` and decorator lines run at import, for every test
            body_of_line.update((line, unit) for line in range(shape.body, shape.end + 1))
        for line, tests in tests_by_line.get(file, {}).items():
            if line in body_of_line:
                for test in tests:
                    units_by_test.setdefault(test, set()).add(body_of_line[line])
        always.update(body_of_line[line] for line in shared_lines.get(file, ()) if line in body_of_line)
    callees = callee_graph(shapes_of)

    tests_of: dict[str, set[str]] = {}
    for nodeid in collected:
        file, unit = test_unit(nodeid)
        tests_of.setdefault(file, set()).add(unit)
    test_shapes = {f: unit_shapes(text) for f, text in test_sources.items()}
    test_classes = {shape.name.split(".", 1)[0] for shapes in test_shapes.values() for shape in shapes
                    if "." in shape.name}
    suite = {f: SuiteModule.of(text, test_shapes[f], tests_of.get(f, set()), test_classes)
             for f, text in test_sources.items()}
    shared_tests = _digest("\0".join(f"{f}={m.shared}" for f, m in sorted(suite.items())))
    all_tests = _digest("\0".join(f"{f}={_digest(text)}" for f, text in sorted(test_sources.items())))
    common = _digest("\0".join([settings, support, module_code.hexdigest(), shared_tests]))
    return CacheKeys(common=common, units=units, unit_starts=starts,
                     units_by_test={t: frozenset(u) for t, u in units_by_test.items()}, always=frozenset(always),
                     callees=callees, test_files=suite, all_tests=all_tests)
