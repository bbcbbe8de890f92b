"""The gate's pytest plugin in each process of the measurement (`-p gate.steps.measurement_plugin`,
loaded before the project's conftest files). Its options and files are `gate.wire.measurement`'s.

- It runs the suite the way mutmut's workers will: once the collection is done, whatever it
  imported (torch, the code, the tests) is frozen out of the garbage collector (`gc.freeze`), as
  the fork server does before it forks a worker. A suite that collects garbage often (an engine's
  out-of-memory recovery, leak checks) would otherwise walk all of torch at every collection.
- Split across processes (`--gate-split K/N`), each process collects the whole suite and keeps its
  share. Shares are whole test classes, or the class-less tests of a module, so that class and
  module fixtures are set up in one process only; they are balanced by the last measurement's
  durations (`--gate-split-durations`; a test it does not know counts as `UNKNOWN_SECONDS`).
  Every process computes the same split from the same collection.
- While the tests run it appends its progress to a file (`--gate-progress`), which the gate polls
  to show how far the measurement is: a `Collected` line with the tests this process will run,
  then a `Finished` line as each ends (line-buffered, never synced: one small write per test).
- At the end of the session it writes an `ImportReport` (`--gate-import-report`): where each
  guarded module (`--gate-guarded-module`) was imported from, so that the gate can tell whether
  the suite ran the snapshot's code; every module file the suite imported from the working
  directory (the support files a cached result depends on); and the environment variables it
  read (`gate.steps.environment_probe`, recording from this plugin's import on).

A bad option value or an unreadable durations file is a usage error (pytest exit 4), never a
silent default. What the options say is kept in `config.stash`."""

from __future__ import annotations

import gc
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pytest

from gate.steps import environment_probe
from gate.wire import codec, measurement
from gate.wire.measurement import Collected, EnvironmentReads, Finished, ImportReport, SplitDurations

UNKNOWN_SECONDS = 0.1


@dataclass(frozen=True)
class Split:
    share: int
    """0-based: the share this process keeps."""
    shares: int
    durations: dict[str, float]


SPLIT = pytest.StashKey[Split | None]()


class ProgressFile:
    """The `--gate-progress` file, appended to as the session goes (a plugin of its own, so that
    the per-test hook needs no config)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.out: TextIO | None = None

    def pytest_collection_finish(self, session) -> None:
        self.out = self.path.open("a", buffering=1, encoding="utf-8")  # each line is seen as it is written
        self._write(Collected(tuple(item.nodeid for item in session.items)))

    def pytest_runtest_logfinish(self, nodeid) -> None:
        if self.out is not None:
            self._write(Finished(nodeid))

    def pytest_unconfigure(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None

    def _write(self, message: Collected | Finished) -> None:
        assert self.out is not None
        self.out.write(codec.dumps(message, measurement.PROGRESS_FORMAT) + "\n")


PROGRESS = pytest.StashKey[ProgressFile | None]()


def pytest_addoption(parser) -> None:
    group = parser.getgroup("gate", "the gate's measurement (gate.steps.measurement_plugin)")
    group.addoption(measurement.SPLIT_OPTION, metavar="K/N", help="keep the K-th of N shares of the suite")
    group.addoption(measurement.SPLIT_DURATIONS_OPTION, metavar="FILE", help="seconds per test, to balance the shares")
    group.addoption(measurement.GUARDED_MODULE_OPTION, action="append", default=[], metavar="MODULE",
                    help="report where this guarded module was imported from")
    group.addoption(measurement.IMPORT_REPORT_OPTION, metavar="FILE", help="write the import report here")
    group.addoption(measurement.PROGRESS_OPTION, metavar="FILE", help="append the session's progress here")


def pytest_configure(config) -> None:
    config.stash[SPLIT] = _split(config.getoption(measurement.SPLIT_OPTION),
                                 config.getoption(measurement.SPLIT_DURATIONS_OPTION))
    progress = config.getoption(measurement.PROGRESS_OPTION)
    config.stash[PROGRESS] = ProgressFile(Path(progress)) if progress else None
    if config.stash[PROGRESS] is not None:
        config.pluginmanager.register(config.stash[PROGRESS], "gate-progress")


def _split(spec: str | None, durations_file: str | None) -> Split | None:
    if not spec:
        return None
    k, slash, n = spec.partition("/")
    if not (slash and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise pytest.UsageError(f"{measurement.SPLIT_OPTION} {spec!r}: expected K/N with 1 <= K <= N")
    durations: dict[str, float] = {}
    if durations_file:
        try:
            durations = codec.read(SplitDurations, Path(durations_file), measurement.FORMAT).seconds
        except codec.WireError as exc:
            raise pytest.UsageError(f"{measurement.SPLIT_DURATIONS_OPTION} {durations_file}: {exc}") from None
    return Split(int(k) - 1, int(n), durations)


def pytest_collection_finish(session) -> None:
    gc.collect()
    gc.freeze()


@pytest.hookimpl(trylast=True)  # after -m, -k and every other plugin chose the items
def pytest_collection_modifyitems(config, items) -> None:
    split = config.stash[SPLIT]
    if split is None:
        return
    owner = _owners(items, split)
    kept = [item for item in items if owner[_group(item)] == split.share]
    dropped = [item for item in items if owner[_group(item)] != split.share]
    items[:] = kept
    if dropped:
        config.hook.pytest_deselected(items=dropped)


def _owners(items, split: Split) -> dict[str, int]:
    """Each group's share: the heaviest groups first, each to the lightest share so far."""
    groups: dict[str, float] = {}
    for item in items:
        group = _group(item)
        groups[group] = groups.get(group, 0.0) + split.durations.get(item.nodeid, UNKNOWN_SECONDS)
    loads, owner = [0.0] * split.shares, {}
    for group in sorted(groups, key=lambda g: (-groups[g], g)):
        share = min(range(split.shares), key=lambda i: (loads[i], i))
        owner[group] = share
        loads[share] += groups[group]
    return owner


def _group(item) -> str:
    file = item.nodeid.split("::", 1)[0]
    cls = getattr(item, "cls", None)
    return f"{file}::{cls.__qualname__}" if cls is not None else file


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ARG001 (pytest's hook signature)
    out = session.config.getoption(measurement.IMPORT_REPORT_OPTION)
    if not out:
        return
    names = session.config.getoption(measurement.GUARDED_MODULE_OPTION)
    found = {name: getattr(sys.modules[name], "__file__", None) for name in names if name in sys.modules}
    here = Path.cwd().resolve()
    files = {Path(f).resolve() for m in list(sys.modules.values()) if isinstance(f := getattr(m, "__file__", None), str)}
    local = tuple(sorted(f.relative_to(here).as_posix() for f in files if f.is_relative_to(here)))
    read, whole = environment_probe.recorded()
    codec.write(Path(out), ImportReport(guarded=found, files=local, environment=EnvironmentReads(read, whole)),
                measurement.FORMAT)
