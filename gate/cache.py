"""Cached mutant results: a result is reused only while everything it depends on is unchanged.

A mutant's outcome depends on the whole program (every guarded file), on the tests that run
against it (their files, and every support file: conftest, helpers, config), and on how they
run. The key hashes all of those, so a changed test re-runs the mutants it covers, a weakened
test cannot hide behind a cached kill, and a run with nothing changed re-runs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

CACHE_VERSION = 1


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


@dataclass(frozen=True)
class Fingerprints:
    """Hashes of what results depend on, computed once per run."""

    sources: str
    support: str
    test_files: Mapping[str, str]
    settings: str

    def key(self, mutant_name: str, mutant_diff: str, tests: Iterable[str]) -> str:
        tests = sorted(tests)
        files = sorted({t.split("::", 1)[0] for t in tests})
        parts = [mutant_name, mutant_diff, self.sources, self.support, self.settings, *tests,
                 *(f"{f}={self.test_files.get(f, '')}" for f in files)]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
