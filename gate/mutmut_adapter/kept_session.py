"""A pytest session configured and collected once, in mutmut's fork server, whose forked workers
each run only their mutant's tests in it.

`pytest.main` per worker configures pytest, loads its plugins and collects the test files again
for every mutant: tens of milliseconds each, against tests that take a few. Here the fork server
does all of that once; a worker picks the collected items it was asked for and runs them through
pytest's own run loop (`pytest_runtestloop`, so `-x`, fixtures, setup and teardown, and every
plugin's hooks behave as in a full session), then ends the session as `pytest.main` would.

This is the one module that uses pytest's internals (`_pytest.config._prepareconfig`,
`Config._do_configure`, `Config._ensure_unconfigure`: the three steps `pytest.main` takes around
a session, split here between the fork server and its workers). If they are missing, if the
collection fails, or if a worker is asked for anything but collected tests (an option, a path
the collection did not see), the caller falls back to `pytest.main` in the worker.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

import pytest


class KeptSession:
    """pytest configured with `args` and `plugins` and the suite collected, in this process; `run`
    (in a forked worker) runs some of the items and ends the session."""

    def __init__(self, args: list[str], plugins: Sequence[object]) -> None:
        from _pytest.config import _prepareconfig

        self.config = _prepareconfig(args, list(plugins))
        try:
            self.config._do_configure()
            self.session = pytest.Session.from_config(self.config)
            self.config.hook.pytest_sessionstart(session=self.session)
            self.config.hook.pytest_collection(session=self.session)
        except BaseException:
            self.config._ensure_unconfigure()
            raise
        if self.session.testsfailed:  # collection errors: let each worker's own session report them
            self.config._ensure_unconfigure()
            raise CollectionFailed(f"{self.session.testsfailed} errors during collection")
        self.items = {item.nodeid: item for item in self.session.items}
        # what plugins import only when a session ends (hypothesis's summary imports hypothesis: half
        # a second) is imported here once, as a collection by `pytest.main` would have, not per worker
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            with contextlib.suppress(Exception):
                self.config.hook.pytest_terminal_summary(terminalreporter=reporter, exitstatus=0,
                                                         config=self.config)
        # the workers capture output in capture files of their own, not in ones shared through the fork
        self._capture = self.config.pluginmanager.get_plugin("capturemanager")
        if self._capture is not None:
            self._capture.stop_global_capturing()

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self.items)

    def select(self, tests: Sequence[str]) -> list[Any] | None:
        """The collected items `tests` name (node ids, a test function's parametrized ids, files or
        folders), in the order given; None if one of them is anything else, or if there are none
        (`pytest.main` would run the whole suite)."""
        if not tests:
            return None
        picked: dict[str, Any] = {}
        for test in tests:
            found = self._items_for(test)
            if not found:
                return None
            picked.update((item.nodeid, item) for item in found)
        return list(picked.values())

    def _items_for(self, test: str) -> list[Any]:
        if test.startswith("-"):
            return []
        if test in self.items:
            return [self.items[test]]
        if "::" in test:
            return [item for nodeid, item in self.items.items() if nodeid.startswith(f"{test}[")]
        path = os.path.normpath(test)
        return [item for nodeid, item in self.items.items()
                if (file := nodeid.split("::", 1)[0]) == path or file.startswith(f"{path}/")]

    def run(self, items: list[Any]) -> int:
        """Run `items` in this (forked) process and end the session; pytest's exit code, as
        `pytest.main` would return it (its `wrap_session`, from the run loop on)."""
        from _pytest.outcomes import Exit

        if self._capture is not None:  # started and suspended, as a session is between its tests
            self._capture.start_global_capturing()
            self._capture.suspend_global_capture()
        session = self.session
        session.items = items
        session.testscollected = len(items)
        status: int = pytest.ExitCode.OK
        try:
            self.config.hook.pytest_runtestloop(session=session)
            if session.testsfailed:
                status = pytest.ExitCode.TESTS_FAILED
        except session.Failed:  # -x: the first failure ends the run
            status = pytest.ExitCode.TESTS_FAILED
        except (KeyboardInterrupt, Exit) as exc:
            status = pytest.ExitCode.INTERRUPTED
            if isinstance(exc, Exit) and exc.returncode is not None:
                status = exc.returncode
            self.config.hook.pytest_keyboard_interrupt(excinfo=pytest.ExceptionInfo.from_current())
        except BaseException:
            status = pytest.ExitCode.INTERNAL_ERROR
            with contextlib.suppress(BaseException):
                self.config.notify_exception(pytest.ExceptionInfo.from_current(), self.config.option)
        session.exitstatus = status  # the terminal reporter and any plugin read (and may set) it
        try:
            self.config.hook.pytest_sessionfinish(session=session, exitstatus=session.exitstatus)
        except Exit as exc:
            if exc.returncode is not None:
                session.exitstatus = exc.returncode
        finally:
            self.config._ensure_unconfigure()
        return int(session.exitstatus)


class CollectionFailed(Exception):
    pass
