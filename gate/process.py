"""Child processes the gate starts: each in a session of its own, so that nothing outlives a run.

On Ctrl-C or SIGTERM (or any error while it runs) the child gets SIGTERM to shut down cleanly
(mutmut's fork server takes its workers down with it), then its whole process group is killed, and
the interruption goes on up to the CLI, which exits 130.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gate.errors import Interrupted
from gate.mutmut_adapter.naming import MUTANT_UNDER_TEST

GRACE_SECONDS = 10.0
_live: set[Child] = set()
_refusing = threading.Event()


@dataclass(frozen=True)
class Completed:
    returncode: int
    output: str
    seconds: float


class Child:
    """`python args...` in `cwd`, started now; its output is read by `finish`. Its stdin is a pipe
    only when asked for (`stdin=True`): a child that waits for instructions, like the mutation
    driver started before it knows its jobs."""

    def __init__(self, args: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None,
                 stdin: bool = False) -> None:
        if _refusing.is_set():  # the run is being abandoned: a thread must not start more work
            raise Interrupted("the run was abandoned")
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            [sys.executable, *args], cwd=cwd, env=_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, text=True, bufsize=1, start_new_session=True)
        _live.add(self)

    def send(self, text: str) -> None:
        """Write `text` to the child's stdin and close it: all it will ever be told."""
        assert self.popen.stdin is not None
        try:
            self.popen.stdin.write(text)
            self.popen.stdin.close()
        except BrokenPipeError:
            pass  # it died already; `finish` reports how

    def finish(self, on_line: Callable[[str], None] | None = None) -> Completed:
        """Stream its output lines to `on_line` until it exits; stop it if anything goes wrong."""
        lines: list[str] = []
        try:
            assert self.popen.stdout is not None
            for line in self.popen.stdout:
                lines.append(line)
                if on_line is not None:
                    on_line(line.rstrip("\n"))
            self.popen.wait()
        except BaseException:  # Ctrl-C or SIGTERM too: the CLI words it (exit 130)
            self.stop()
            raise
        finally:
            self._reap()
        return Completed(self.popen.returncode, "".join(lines), time.monotonic() - self.started)

    def stop(self) -> None:
        """SIGTERM the child so it can shut its workers down, then SIGKILL whatever is left of its group."""
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            self._reap()
            return
        try:
            self.popen.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        self._reap()

    def _reap(self) -> None:
        _live.discard(self)
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def last_line(output: str) -> str:
    """The last non-blank line of a child's output: what a one-line error quotes of it."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def tool_caches(folder: Path) -> dict[str, str]:
    """Environment that keeps the test tools' own caches in `folder`, which outlives the run, where
    the user did not choose a place: hypothesis's (`.hypothesis/` by default, in the snapshot that
    every run rebuilds, where it would parse the project's modules again for its constants each
    time, seconds on a cold cache)."""
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        return {}
    return {"HYPOTHESIS_STORAGE_DIRECTORY": str(folder / "hypothesis")}


def run_python(args: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None,
               on_line: Callable[[str], None] | None = None) -> Completed:
    """Run `python args...` in `cwd`; stream stdout lines to `on_line`, keep stderr+stdout as output."""
    return Child(args, cwd=cwd, env=env).finish(on_line)


def stop_all() -> None:
    """Stop every child still running (those of other threads too): the run is being abandoned."""
    for child in list(_live):
        child.stop()


@contextlib.contextmanager
def abandoning() -> Iterator[None]:
    """While the run is abandoned: every child is stopped, and no thread may start a new one."""
    _refusing.set()
    try:
        stop_all()
        yield
        stop_all()
    finally:
        _refusing.clear()


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop(MUTANT_UNDER_TEST, None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class Background:
    """One function run on a thread while the caller does something else; if the run is
    abandoned, its child processes are stopped with the others."""

    def __init__(self, fn: Callable[..., object], *args: object) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="gate")
        self._future = self._pool.submit(fn, *args)

    def result(self) -> Any:
        value = self._future.result()  # on an error or Ctrl-C here, the caller abandons the run
        self._pool.shutdown()
        return value

    def abandon(self) -> None:
        # children stopped, the thread let finish (it may start none), and whatever it started stopped
        with abandoning():
            self._pool.shutdown(wait=True)
