"""Cached mutant results: a result is reused only while everything it depends on is unchanged.

A mutant's key hashes what can change its outcome, each piece of code as the interpreter reads it
(its `ast.dump`: a comment, a blank line, a statement wrapped over lines or re-indented changes
nothing; a docstring, an annotation, a decorator, a local's name or a constant does):
- the mutant itself: its name (function and number) and its function as mutated, rebuilt from the
  guarded file and the mutant's diff (so no line number, and no context line of the diff, is in
  it); where it cannot be rebuilt (the diff does not read as the file's lines, or the result does
  not parse to that one function), its diff, counted from the function's first line, and the
  function's text, as before;
- the code of every guarded function its covering tests executed in the measurement (coverage.py's
  per-test contexts: when `clear_model` calls `model.clear_cache`, a change to either re-runs the
  other's mutants), of every guarded function run outside a test's own call (at collection, in a
  fixture's setup or teardown: a shared fixture runs for whichever test comes first, and for each
  mutant's run again), and of every guarded function reachable from those or from the mutant's own
  function, however many calls deep: named in one (called, handed on as a callback, a class
  instantiated), or a special method of its class (`with`, operators and `repr` call those
  unnamed). The mutant may reach code the measurement never ran: in its own function, or one frame
  up, when an exception it lets escape enters a caller's handler;
- the module-level code of every guarded file (it runs at import, for every test), each function in
  it a marker of its name in its place;
- the covering tests: their node ids and their own code; everything in the suite's test modules
  that is not a test standing alone (module code, fixtures, helpers, base classes: any test may use
  them); a test whose own source cannot be told apart (inherited, or of a class deriving from a
  test class of the suite) counts with all of the suite's test modules;
- the support files the suite may read: every project module it imported, every file under the
  folders that hold its tests, and every other file that is not Python or documentation;
- the settings that decide how the tests run, the gate's version and the environment.

A changed function re-runs the mutants whose covering tests execute it or whose functions can reach it, a
changed test re-runs the mutants it covers, and a weakened test cannot hide behind a cached kill.
What is not part of the key: a guarded function reached only through a name no reachable function
spells (`getattr(obj, name)`, a function looked up in a registry filled elsewhere); and what only
the text of a guarded file or a test module says (its comments, its line numbers: a test that
reads a traceback's line number or a function's source text sees those change, its result does not).
"""


from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from gate.files import write_atomic
from gate.result import Mutant
from gate.steps.regions import UnitShape, module_code, unit_shapes
from gate.steps.snapshot import test_unit

CACHE_VERSION = 3
"""2: a mutant's function and tests keyed on their source text; 3: on their code (`ast.dump`), the
mutant's own part on its function as mutated (an entry of 2 was keyed otherwise: never reused)."""


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
    """Each guarded function's code (`ast.dump`), hashed."""
    unit_texts: Mapping[Unit, str]
    """Each guarded function's source text, hashed: for a mutant whose function cannot be rebuilt."""
    unit_starts: Mapping[Unit, int]
    unit_spans: Mapping[Unit, tuple[tuple[int, int], ...]]
    """The first and last line of each definition of a guarded function."""
    lines: Mapping[str, tuple[str, ...]]
    """Each guarded file's lines, to rebuild a mutant's function from."""
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
    """All the suite's test modules' code, hashed: for a test whose own code cannot be told apart."""

    def depends_on(self, file: str, unit: str, tests: Iterable[str]) -> set[Unit]:
        """The guarded functions a mutant of `file`'s `unit` with these covering tests depends on:
        its own, those its tests executed, those run for every test, and every function reachable
        from them (the mutant may reach a call the measurement never made, in its own function or
        one frame up: an exception it lets escape enters a caller's handler the measurement never ran)."""
        executed = {(file, unit), *self.always}.union(*(self.units_by_test.get(t, frozenset()) for t in tests))
        return reachable(executed, self.callees)

    def key(self, mutant: Mutant, tests: Iterable[str]) -> str:
        tests = sorted(tests)
        parts = [mutant.name, self.change(mutant), self.common, *(f"{t}={self._test_digest(t)}" for t in tests),
                 *(f"{f}::{u}={self.units.get((f, u), '')}"
                   for f, u in sorted(self.depends_on(mutant.file, mutant.unit, tests)))]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def change(self, mutant: Mutant) -> str:
        """The code the mutant runs: its function as mutated (`mutated_code`); where that cannot be
        rebuilt, its diff counted from the function's first line and the function's text (never
        less than that: the function's code alone does not say where the diff's lines lie)."""
        unit = (mutant.file, mutant.unit)
        mutated = mutated_code(self.lines.get(mutant.file, ()), self.unit_spans.get(unit, ()), mutant)
        if mutated is not None:
            return f"code\0{_digest(mutated)}"
        where = mutant.start - self.unit_starts.get(unit, 0)
        return "\0".join(["text", str(where), HUNK_HEADER.sub("@@", mutant.diff), self.unit_texts.get(unit, "")])

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

        picked = {shape.name for shape in shapes if alone(shape)}
        tests: dict[str, str] = {}
        for shape in shapes:
            if shape.name in picked:  # every definition of a repeated name, in order
                tests[shape.name] = _digest(tests.get(shape.name, "") + shape.code)
        return cls(shared=_digest(module_code(source, picked.__contains__)), tests=tests)


def _split(source: str, shapes: list[UnitShape]) -> dict[str, str]:
    """A hash of the text of each of `shapes` (the source's units; of all units of that name,
    should there be several): what a mutant's key holds of its function where its function as
    mutated cannot be rebuilt."""
    lines = source.splitlines()
    parts: dict[str, str] = {}
    for shape in shapes:
        text = "\n".join(lines[shape.start - 1:shape.end])
        parts[shape.name] = _digest(parts.get(shape.name, "") + text)
    return parts


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


HUNK_HEADER = re.compile(r"^@@ [^@]* @@", re.M)
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")


def mutated_code(lines: tuple[str, ...], spans: Iterable[tuple[int, int]], mutant: Mutant) -> str | None:
    """The `ast.dump` of the mutant's function as mutated: the definition of its unit (`spans`)
    that holds its lines, out of the guarded file's `lines`, with the mutant's diff applied; None
    where the diff's context and removed lines are not the file's there, or the result does not
    parse to one function of the unit's name (the key then falls back to the text)."""
    span = next(((s, e) for s, e in spans if s <= mutant.start and mutant.end <= e), None)
    text = _patched(lines, span, mutant.diff) if span is not None else None
    if not text:
        return None
    # a method's lines are indented: under a class line they parse as they are (no dedent, which
    # a multi-line string's lines could defeat)
    indented = text[0][:1].isspace()
    try:
        module = ast.parse("\n".join(["class _:", *text] if indented else text))
    except (SyntaxError, ValueError, RecursionError):
        return None
    body = module.body[0].body if indented and module.body and isinstance(module.body[0], ast.ClassDef) \
        else module.body
    if len(body) != 1 or not isinstance(body[0], (ast.FunctionDef, ast.AsyncFunctionDef)) \
            or body[0].name != mutant.unit.rpartition(".")[2]:
        return None
    return ast.dump(body[0], include_attributes=False)


def _patched(lines: tuple[str, ...], span: tuple[int, int], diff: str) -> list[str] | None:
    """Lines `span` of `lines` with the unified `diff` (in the file's line numbers) applied; None
    where a hunk lies outside them or its context or removed lines differ from the file's."""
    first, last = span
    out: list[str] = []
    at = first  # the next line of the file to copy
    hunk = None
    # the adapter prints a method with its class's indent added to every line, a multi-line
    # string's too: a context line may read so (it only anchors the hunk; the file's line is kept)
    indent = lines[first - 1][:len(lines[first - 1]) - len(lines[first - 1].lstrip())] if first <= len(lines) else ""
    for row in diff.splitlines():
        found = _HUNK.match(row)
        if found:
            start = int(found[1]) + (1 if found[2] == "0" else 0)  # `-k,0` inserts after line k
            if start < at or start > last + 1:
                return None
            out += lines[at - 1:start - 1]
            at, hunk = start, True
        elif hunk and row[:1] in (" ", "-"):
            if at > last or row[1:] not in (lines[at - 1], *((indent + lines[at - 1],) if row[0] == " " else ())):
                return None
            if row[0] == " ":
                out.append(lines[at - 1])
            at += 1
        elif hunk and row[:1] == "+":
            out.append(row[1:])
        elif hunk or not row.startswith(("--- ", "+++ ")):
            return None  # a line a unified diff of whole lines does not have
    if hunk is None:
        return None
    return out + list(lines[at - 1:last])


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
    texts: dict[Unit, str] = {}
    starts: dict[Unit, int] = {}
    spans: dict[Unit, tuple[tuple[int, int], ...]] = {}
    module_codes = hashlib.sha256()
    units_by_test: dict[str, set[Unit]] = {}
    always: set[Unit] = set()
    shapes_of = {file: unit_shapes(sources[file]) for file in sources}
    for file in sorted(sources):
        shapes = shapes_of[file]
        module_codes.update(f"{file}\0{_digest(module_code(sources[file], lambda name: True))}\0".encode())
        parts = _split(sources[file], shapes)
        body_of_line: dict[int, Unit] = {}
        for shape in shapes:
            unit = (file, shape.name)
            # every definition of a repeated name, in order (a property's getter and setter)
            units[unit] = _digest(units.get(unit, "") + shape.code)
            texts[unit], starts[unit] = parts[shape.name], shape.start
            spans[unit] = (*spans.get(unit, ()), (shape.start, shape.end))
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
    all_tests = _digest("\0".join(f"{f}={_digest(module_code(text, lambda name: False))}"
                                  for f, text in sorted(test_sources.items())))
    common = _digest("\0".join([settings, support, module_codes.hexdigest(), shared_tests]))
    return CacheKeys(common=common, units=units, unit_texts=texts, unit_starts=starts, unit_spans=spans,
                     lines={file: tuple(sources[file].split("\n")) for file in sources},
                     units_by_test={t: frozenset(u) for t, u in units_by_test.items()}, always=frozenset(always),
                     callees=callees, test_files=suite, all_tests=all_tests)
