"""Writing a file so that no reader ever sees half of it."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """`text` into `path`, its folder made: written beside it, then renamed over it, so a reader
    (or a run stopped half-way) sees the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def overwrite(path: Path, text: str) -> None:
    """`text` into the existing file `path` where it lies (never made anew): for a folder that
    takes no new file (read-only), whose last file must not be read as newer than it is. A reader
    may see part of it, which `write_atomic` never shows; OSError where the file is not there or
    not writable either."""
    with path.open("r+", encoding="utf-8") as file:
        file.write(text)
        file.truncate()


def writable_folder(folder: Path) -> OSError | None:
    """Why the gate cannot make `folder` and write a file in it, or None when it can (a file made
    and removed there: the one test a read-only mount, an ACL and root all answer truthfully)."""
    probe = folder / f".gate-probe.{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_text("", encoding="utf-8")
        probe.unlink()
    except OSError as error:  # named by the folder, not by the probe
        return OSError(error.errno, error.strerror, str(folder))
    return None
