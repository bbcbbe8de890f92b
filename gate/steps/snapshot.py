"""A snapshot of the project in the gate's cache folder, where coverage and mutmut do their work.

The gate never writes into the user's files: it copies them (mtimes kept, so mutmut's own
caching keeps working) and every later step runs in the copy. The copy is also a consistent
picture of the tree while the user goes on editing.
"""

from __future__ import annotations

import contextlib
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

# A file git ignores is copied only where an import may need it (a version module hatch-vcs or
# setuptools-scm writes at install, an extension built in place): in a package's folder, or beside
# the outermost packages in `src/`; only of these kinds, only this large, never build output.
GENERATED_SUFFIXES = frozenset({".py", ".pyi", ".typed", ".so", ".pyd", ".json", ".toml", ".yaml", ".yml",
                                ".txt", ".cfg", ".ini", ".csv"})
GENERATED_MAX_BYTES = 8 * 1024 * 1024
_BUILD_DIRS = {"build", "dist", ".eggs", "htmlcov", ".gate"}
_BUILD_DIR_SUFFIXES = (".egg-info", ".dist-info")


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
    """The project's files, relative to `root`: git's view (tracked and untracked, not ignored,
    plus `generated_files`) where `root` is in a git work tree, else a walk that skips caches and
    environments."""
    skip_abs = [p.resolve() for p in skip]
    files = _git_files(root)
    if files is None:
        files = _walked_files(root)
    else:  # what git ignores but the packages import: generated at install, never committed
        files += generated_files(root, files)
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


def generated_files(root: Path, files: list[str]) -> list[str]:
    """The files git ignores that the project's code may import: under the folder of an outermost
    package (one holding an `__init__.py` of `files`) or directly in the folder holding it, where
    that is not the project's root (`src/`); of `GENERATED_SUFFIXES`, at most `GENERATED_MAX_BYTES`,
    outside caches and build output (`*.egg-info`, `build/`, ...)."""
    inits = {Path(f).parent for f in files if Path(f).name == "__init__.py"} - {Path(".")}
    packages = {d for d in inits if not any(p in inits for p in d.parents)}
    roots = {d.parent for d in packages} | {Path(f).parent for f in files if Path(f).parent == Path("src")}
    roots.discard(Path("."))
    if not packages and not roots:  # no pathspec would mean the whole tree
        return []
    specs = [f":(literal){d.as_posix()}" for d in sorted(packages | roots)]
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--", *specs],
                             cwd=root, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return []
    found = []
    for rel in (f for f in out.stdout.decode().split("\0") if f):
        path = Path(rel)
        if not (path.parent in roots or any(p in packages for p in path.parents)):
            continue  # deeper in `src/` than its outermost packages' own folders
        folders = path.parts[:-1]
        if path.suffix not in GENERATED_SUFFIXES or any(
                d in _SKIP_DIRS or d in _BUILD_DIRS or d.endswith(_BUILD_DIR_SUFFIXES) for d in folders):
            continue
        with contextlib.suppress(OSError):
            if (root / rel).is_file() and (root / rel).stat().st_size <= GENERATED_MAX_BYTES:
                found.append(rel)
    return found


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
