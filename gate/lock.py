"""One gate run per repository at a time: an exclusive lock on a file in the cache folder."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from gate.errors import LockedError

POLL_SECONDS = 0.2


@contextlib.contextmanager
def exclusive(cache_dir: Path, timeout: float) -> Iterator[None]:
    """Hold the cache's lock; wait up to `timeout` seconds for another run to finish first."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    # the cache folder never shows up as untracked in the user's repository
    ignore = cache_dir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    path = cache_dir / "lock"
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    raise LockedError(_held_message(cache_dir, handle.read().strip(), timeout)) from None
                time.sleep(POLL_SECONDS)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _held_message(cache_dir: Path, holder: str, timeout: float) -> str:
    """Who holds the lock (the pid it wrote, when it got that far) and what this run already
    waited: a run that waited has nothing to learn from "pass --lock-timeout"."""
    who = f"another gate run (pid {holder})" if holder else "another gate run"
    if timeout <= 0:
        return f"{who} is using {cache_dir}; wait for it to finish or pass --lock-timeout SECONDS"
    return (f"{who} still holds {cache_dir} after waiting {timeout:g} s for it; wait for it to finish "
            "or pass a longer --lock-timeout")
