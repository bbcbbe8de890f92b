"""Which code a child process imports: the snapshot's, whatever the user installed.

An editable install (`pip install -e .`, a `.pth` file pointing at the user's tree) or a
`PYTHONPATH` would otherwise let the suite import the user's files instead of the gate's
snapshot, so that coverage measures nothing and mutants are never imported. Every child (the
measurement, the exception types, mutmut's driver) puts the import roots of the guarded files first
on its path, and the measurement checks where each guarded module really came from (`measurement_plugin`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path


def import_root(root: Path, rel: str) -> str:
    """The folder, relative to `root`, that `rel` is imported from: the parent of its outermost
    package (`src` for `src/vault/store.py`, `.` for `vault/store.py` and for `pkg/ns/mod.py`,
    where `pkg` is a package and `ns` a namespace package in it); for a file in no package, `src`
    when it lies under `src/`, else `.`."""
    folders = list(reversed(Path(rel).parents))[1:]  # outermost first, without "."
    for folder in folders:
        if (root / folder / "__init__.py").exists():
            return folder.parent.as_posix()
    return "src" if Path(rel).parts[0] == "src" and len(Path(rel).parts) > 1 else "."

def import_roots(root: Path, files: list[str]) -> list[str]:
    """The import roots of `files`, deepest first (`src` before `.`)."""
    return sorted({import_root(root, f) for f in files}, key=lambda r: (-len(Path(r).parts), r))


def module_name(root: Path, rel: str) -> str:
    """The dotted name `rel` is imported under (`vault.store`, `vault` for its `__init__.py`)."""
    parts = list(Path(rel).relative_to(import_root(root, rel)).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def python_path(root: Path, roots: list[str]) -> str:
    """`PYTHONPATH` for a child that must import the code under `root`: its import roots first,
    then whatever the user had (which PYTHONPATH puts before site-packages and any `.pth` file)."""
    entries = [str((root / r).resolve()) for r in roots]
    user = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join(entries + ([user] if user else []))


def environment_key() -> str:
    """Everything outside the project that decides what a child imports and how it behaves: the
    interpreter and its path, `PYTHONPATH`, the import path (with every `.pth` entry), and each
    installed distribution with the tree an editable one points at."""
    dists = []
    for dist in importlib.metadata.distributions():
        entry = f"{dist.metadata['Name']}=={dist.version}"
        try:
            direct = json.loads(dist.read_text("direct_url.json") or "{}")
        except ValueError:
            direct = {}
        if direct.get("dir_info", {}).get("editable"):
            entry += f" editable at {direct.get('url')}"
        dists.append(entry)
    # sys.path[0] is the folder the gate was started from, which changes no child's imports
    parts = [sys.version, sys.executable, os.environ.get("PYTHONPATH", ""), *sys.path[1:], *sorted(dists)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def outside(work: Path, imported: dict[str, str | None]) -> tuple[str, str] | None:
    """The first guarded module (name, file) that was imported from outside `work`, if any."""
    base = work.resolve()
    for name, file in sorted(imported.items()):
        if file is not None and not Path(file).resolve().is_relative_to(base):
            return name, file
    return None


@dataclass(frozen=True)
class FailedImport:
    """An import that failed, as pytest's traceback shows it."""

    module: str
    """The module that could not be imported (`stamp._version`)."""
    file: str | None
    """The file whose top level imported it, as pytest names it: relative inside its root directory."""
    line: int | None
    error: str
    """The exception's own line (`No module named 'stamp._version'`)."""


# pytest's short traceback: "src/stamp/__init__.py:3: in <module>", then "E   ModuleNotFoundError: ..."
_MODULE_FRAME = re.compile(r"^(\S.*?):(\d+): in <module>$", re.M)
_IMPORT_ERROR = re.compile(r"^E\s+(?:ModuleNotFoundError|ImportError): (.+)$", re.M)
_MISSING = re.compile(r"No module named '([^']+)'|cannot import name '[^']+' from '([^']+)'")


def failed_import(traceback: str) -> FailedImport | None:
    """The first failed import in pytest's traceback text, with the module it could not import and
    the top-level statement that imported it; None where no import failed or the module is unnamed."""
    error = _IMPORT_ERROR.search(traceback)
    missing = _MISSING.search(error[1]) if error else None
    if error is None or missing is None:
        return None
    frames = list(_MODULE_FRAME.finditer(traceback, 0, error.start()))
    file, line = (frames[-1][1], int(frames[-1][2])) if frames else (None, None)
    return FailedImport(missing[1] or missing[2], file, line, " ".join(error[1].split())[:200])
