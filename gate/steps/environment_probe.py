"""In the measurement's process (imported by the gate's pytest plugin `gate.steps.measurement_plugin`, which
`-p` loads before the project's conftest files): which environment variables the suite reads, so
that a cached result is keyed on those and no others (`gate.environment`).

Python code reads the environment through `os.environ` (`os.getenv`, `in`, `.get`, `[...]`), all of
which go through `os._Environ.__getitem__`: a read by name is what is recorded. Where the suite can
read more than it names, the whole environment counts: it iterates over `os.environ` (a copy,
`dict(...)`, `items()`, `repr`, `mock.patch.dict`), or it starts a process, which inherits all of
it. The reads an iteration makes of every value are no reads by name. `recorded()` says what was
seen; `gate.steps.measurement_plugin` writes it out with the rest of what the measurement did."""

from __future__ import annotations

import _posixsubprocess
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

_read: set[str] = set()
_whole: list[str] = []
"""Why the whole environment counts (the first reason is enough)."""
BULK_READERS = frozenset({"__iter__", "copy", "popitem", "__repr__"})
"""The functions of `os` and `collections.abc` that read every value while iterating (`items()`,
`values()`, `copy()`, `clear()`): what they read is no read by name."""


def recorded() -> tuple[tuple[str, ...], str | None]:
    """The variables read by name so far, and why the whole environment counts (None: it does not)."""
    return tuple(sorted(_read)), (_whole[0] if _whole else None)


def _install() -> None:
    environ = type(os.environ)
    getitem, iterate, represent = environ.__getitem__, environ.__iter__, environ.__repr__

    def __getitem__(self, key):  # noqa: N807 (the method it stands in for)
        if (self is os.environ or self is getattr(os, "environb", None)) \
                and sys._getframe(1).f_code.co_name not in BULK_READERS:
            _read.add(key.decode(errors="replace") if isinstance(key, bytes) else str(key))
        return getitem(self, key)

    def __iter__(self):  # noqa: N807
        _note("the suite iterates over os.environ")
        return iterate(self)

    def __repr__(self):  # noqa: N807
        _note("the suite prints os.environ")
        return represent(self)

    environ.__getitem__, environ.__iter__, environ.__repr__ = __getitem__, __iter__, __repr__
    # subprocess holds its own reference to fork_exec: its Popen is wrapped instead
    for owner, name in ((subprocess.Popen, "_execute_child"), (_posixsubprocess, "fork_exec"), (os, "fork"),
                        (os, "system"), (os, "posix_spawn"), (os, "posix_spawnp"), (os, "execv"), (os, "execve")):
        if hasattr(owner, name):
            setattr(owner, name, _noting_a_process(getattr(owner, name)))


def _note(why: str) -> None:
    if not _whole:
        _whole.append(why)


def _noting_a_process(start: Callable[..., Any]) -> Callable[..., Any]:
    def started(*args: Any, **kwargs: Any) -> Any:
        _note("the suite starts a process, which inherits the environment")
        return start(*args, **kwargs)

    return started


_install()
