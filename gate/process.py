"""Child processes the gate starts: each in a session of its own, so that nothing outlives a run.

On Ctrl-C (or any error while it runs) the child gets SIGTERM to shut down cleanly (mutmut's fork
server takes its workers down with it), then its whole process group is killed, and the gate
raises `Interrupted` so that the CLI exits 130.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gate.errors import Interrupted

GRACE_SECONDS = 10.0
_live: set[subprocess.Popen] = set()


@dataclass(frozen=True)
class Completed:
    returncode: int
    output: str
    seconds: float


def run_python(args: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None,
               on_line: Callable[[str], None] | None = None) -> Completed:
    """Run `python args...` in `cwd`; stream stdout lines to `on_line`, keep stderr+stdout as output."""
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, *args], cwd=cwd, env=_env(env), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
    _live.add(child)
    lines: list[str] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            lines.append(line)
            if on_line is not None:
                on_line(line.rstrip("\n"))
        child.wait()
    except KeyboardInterrupt:
        stop(child)
        raise Interrupted("interrupted by Ctrl-C; finished results are cached") from None
    except BaseException:
        stop(child)
        raise
    finally:
        _live.discard(child)
        _reap_group(child.pid)
    return Completed(child.returncode, "".join(lines), time.monotonic() - started)


def stop_all() -> None:
    """Stop every child still running (those of other threads too): the run is being abandoned."""
    for child in list(_live):
        stop(child)


def stop(child: subprocess.Popen) -> None:
    """SIGTERM the child so it can shut its workers down, then SIGKILL whatever is left of its group."""
    try:
        os.killpg(child.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        child.wait(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    _reap_group(child.pid)


def _reap_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MUTANT_UNDER_TEST", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env
