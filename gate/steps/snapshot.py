"""A snapshot of the project in the gate's cache folder, where coverage and mutmut do their work.

The gate never writes into the user's files: it copies them (mtimes kept, so mutmut's own
caching keeps working) and every later step runs in the copy. The copy is also a consistent
picture of the tree while the user goes on editing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Never copied: the gate's and mutmut's own output, VCS data, environments and caches.
_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache",
              ".ruff_cache", ".tox", ".nox", "mutants", "node_modules", ".venv", "venv"}


@dataclass(frozen=True)
class Snapshot:
    work: Path
    """The copy's folder."""
    files: list[str]
    """The project's files it holds, relative paths."""


def take(root: Path, work: Path, own: Iterable[Path]) -> Snapshot:
    """Copy the project in `root` to `work` (only what changed since the last copy); the folders in
    `own` (the gate's cache and reports) are never part of it."""
    files = project_files(root, own)
    sync(root, work, files)
    return Snapshot(work, files)


def project_files(root: Path, skip: Iterable[Path]) -> list[str]:
    """The project's files, relative to `root`: git's view (tracked and untracked, not ignored)
    where `root` is in a git work tree, else a walk that skips caches and environments."""
    skip_abs = [p.resolve() for p in skip]
    files = _git_files(root)
    if files is None:
        files = _walked_files(root)
    return sorted(f for f in files
                  if (root / f).is_file() and not any(is_within(root / f, s) for s in skip_abs)
                  and not set(Path(f).parts) & _SKIP_DIRS)


def sync(root: Path, work: Path, files: list[str]) -> None:
    """Make `work` hold exactly `files` of `root`, leaving mutmut's `mutants/` folder alone."""
    work.mkdir(parents=True, exist_ok=True)
    wanted = set(files)
    for rel in files:
        source, target = root / rel, work / rel
        st = source.stat()
        try:
            tt = target.stat()
            if tt.st_size == st.st_size and tt.st_mtime_ns == st.st_mtime_ns:
                continue
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    for dirpath, dirnames, filenames in os.walk(work):
        rel_dir = Path(dirpath).relative_to(work)
        dirnames[:] = [d for d in dirnames if not (rel_dir == Path(".") and d == "mutants")]
        for name in filenames:
            rel = (rel_dir / name).as_posix()
            if rel not in wanted:
                (Path(dirpath) / name).unlink()


def digest(root: Path, files: Iterable[str]) -> str:
    """A content hash of `files`: what a cached result depends on."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0")
        h.update(hashlib.sha256((root / rel).read_bytes()).digest())
    return h.hexdigest()


def commit_of(root: Path, own: Iterable[Path] = ()) -> str | None:
    """`1a2b3c4`, with ` plus uncommitted changes` when the project's files (untracked ones too,
    but not the gate's own folders `own`) differ from it; None outside git."""
    excluded = [f":(exclude){p.resolve().relative_to(root.resolve()).as_posix()}" for p in own
                if p.resolve().is_relative_to(root.resolve())]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", ".", *excluded], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + (" plus uncommitted changes" if dirty else "")


def _git_files(root: Path) -> list[str] | None:
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=root, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return [f for f in out.stdout.decode().split("\0") if f]


def _walked_files(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not (here / d / "pyvenv.cfg").exists()]
        found.extend((here / name).relative_to(root).as_posix() for name in filenames)
    return found


def is_within(path: Path, folder: Path) -> bool:
    """Whether `path` lies in `folder` (links resolved)."""
    return path.resolve().is_relative_to(folder.resolve())


def is_test_module(path: str | Path) -> bool:
    """A file pytest collects tests from by default (`test_*.py`, `*_test.py`)."""
    p = Path(path)
    return p.suffix == ".py" and (p.name.startswith("test_") or p.name.endswith("_test.py"))


def test_unit(nodeid: str) -> tuple[str, str]:
    """The file and the test function (`Class.test_x`, parametrize ids dropped) of a pytest node id."""
    file, _, rest = nodeid.partition("::")
    return file, ".".join(part.split("[", 1)[0] for part in rest.split("::"))


DOCUMENTATION_SUFFIXES = (".md", ".rst")


def is_documentation(path: str | Path) -> bool:
    """Prose no test or import reads (`.md`, `.rst`): the one kind of file a result never depends on."""
    return Path(path).suffix in DOCUMENTATION_SUFFIXES
