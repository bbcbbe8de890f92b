"""Cached mutant results: a result is reused only while everything it depends on is unchanged.

A mutant's key hashes what can change its outcome, and nothing else:
- the mutant itself: its function, operator and change, without its line numbers (a line added
  above the function does not change it);
- the source of every guarded function its covering tests executed in the baseline (coverage.py's
  per-test contexts: when `clear_model` calls `model.clear_cache`, a change to either re-runs the
  other's mutants), and the module-level code of every guarded file (it runs at import, for every
  test);
- the covering tests: their node ids, their own source, and everything in their files that is not
  another test (module-level code, fixtures, helpers; a test whose function cannot be found, one
  inherited from another file, say, counts with its whole file);
- the support files the suite may read: every project module it imported, every file under the
  folders that hold its tests, and every other file that is not Python or documentation;
- the settings that decide how the tests run, the gate's version and the environment.

A changed function re-runs the mutants whose covering tests execute it, a changed test re-runs the
mutants it covers, and a weakened test cannot hide behind a cached kill. A function that no
covering test executed in the baseline is not part of the key: only the mutant could make the
tests reach it, and its own function (always part of the key) is where that path starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from gate.regions import unit_spans

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": CACHE_VERSION,
                                   "entries": {n: asdict(e) for n, e in sorted(self.entries.items())}}))
        os.replace(tmp, self.path)


Unit = tuple[str, str]
"""(guarded file, `Class.method` or `function`)."""


@dataclass(frozen=True)
class Fingerprints:
    """Hashes of what results depend on, computed once per run."""

    common: str
    """The settings, the environment, the support files and the module-level code of every guarded file."""
    units: Mapping[Unit, str]
    """Each guarded function's source, hashed."""
    unit_starts: Mapping[Unit, int]
    units_by_test: Mapping[str, frozenset[Unit]]
    """The guarded functions each test executed in the baseline."""
    test_files: Mapping[str, SuiteModule]

    def depends_on(self, file: str, unit: str, tests: Iterable[str]) -> set[Unit]:
        """The guarded functions a mutant of `file`'s `unit` with these covering tests depends on."""
        return {(file, unit)}.union(*(self.units_by_test.get(t, frozenset()) for t in tests))

    def key(self, name: str, file: str, unit: str, start: int, diff: str, tests: Iterable[str]) -> str:
        tests = sorted(tests)
        # the change as the function sees it: lines counted from the function's first line
        where = start - self.unit_starts.get((file, unit), 0)
        parts = [name, str(where), HUNK_HEADER.sub("@@", diff), self.common,
                 *(f"{t}={self._test_digest(t)}" for t in tests),
                 *(f"{f}::{u}={self.units.get((f, u), '')}" for f, u in sorted(self.depends_on(file, unit, tests)))]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def _test_digest(self, nodeid: str) -> str:
        file, _, rest = nodeid.partition("::")
        found = self.test_files.get(file)
        if found is None:
            return ""
        unit = ".".join(part.split("[", 1)[0] for part in rest.split("::"))
        own = found.tests.get(unit)
        return f"{found.shared}:{own}" if own is not None else found.whole


@dataclass(frozen=True)
class SuiteModule:
    """A test module's source, hashed in parts: each test function (or test method of a top-level
    class) alone, and everything else together."""

    whole: str
    shared: str
    tests: Mapping[str, str]

    @classmethod
    def of(cls, source: str) -> SuiteModule:
        tests, shared = _split(source, lambda name: name.rsplit(".", 1)[-1].startswith("test"))
        return cls(whole=_digest(source), shared=shared, tests={name: part[1] for name, part in tests.items()})


def _split(source: str, separate: Callable[[str], bool] = lambda name: True
           ) -> tuple[dict[str, tuple[int, str, int]], str]:
    """The units (`unit_spans`) that `separate` picks, each as (first line, hash of its lines, last
    line), and a hash of every other line together but blank and comment-only ones (so that a
    comment or a blank line added between functions moves them without changing anything)."""
    lines = source.splitlines()
    parts: dict[str, tuple[int, str, int]] = {}
    rest = set(range(1, len(lines) + 1))
    for name, start, end in unit_spans(source):
        if separate(name):
            parts[name] = (start, _digest("\n".join(lines[start - 1:end])), end)
            rest -= set(range(start, end + 1))
    code = [lines[i - 1] for i in sorted(rest) if lines[i - 1].strip() and not lines[i - 1].lstrip().startswith("#")]
    return parts, _digest("\n".join(code))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


HUNK_HEADER = re.compile(r"^@@ [^@]* @@", re.M)


def build_fingerprints(sources: Mapping[str, str], tests_by_line: Mapping[str, Mapping[int, Iterable[str]]],
                       test_sources: Mapping[str, str], support: str, settings: str) -> Fingerprints:
    """The fingerprints of a run: `sources` are the guarded files' texts, `tests_by_line` the
    baseline's per-line tests (file -> line -> node ids), `test_sources` the test modules' texts,
    `support` a digest of the support files."""
    units: dict[Unit, str] = {}
    starts: dict[Unit, int] = {}
    module_code = hashlib.sha256()
    units_by_test: dict[str, set[Unit]] = {}
    for file in sorted(sources):
        parts, rest = _split(sources[file])
        module_code.update(f"{file}\0{rest}\0".encode())
        unit_of_line: dict[int, Unit] = {}
        for name, (start, digest, end) in parts.items():
            units[(file, name)], starts[(file, name)] = digest, start
            unit_of_line.update((line, (file, name)) for line in range(start, end + 1))
        for line, tests in tests_by_line.get(file, {}).items():
            if line in unit_of_line:
                for test in tests:
                    units_by_test.setdefault(test, set()).add(unit_of_line[line])
    common = hashlib.sha256("\0".join([settings, support, module_code.hexdigest()]).encode()).hexdigest()
    return Fingerprints(common=common, units=units, unit_starts=starts,
                        units_by_test={t: frozenset(u) for t, u in units_by_test.items()},
                        test_files={f: SuiteModule.of(text) for f, text in test_sources.items()})

