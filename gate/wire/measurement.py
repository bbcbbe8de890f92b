"""The measurement's boundary: the suite's processes under coverage (`gate.steps.measurement`) and
the gate's pytest plugin in each of them (`gate.steps.measurement_plugin`).

The gate tells the plugin what to do with its `--gate-*` options (below); the plugin reads the
split's durations from a `SplitDurations` file, appends its progress to a progress file while the
tests run (a `Collected` line, then a `Finished` line per test, which the gate polls), and writes an
`ImportReport` when the session ends. The gate keeps a `MeasurementRecord` beside coverage.py's
data, for the next run to reuse.

Format history:
1. the first typed format (before it: environment variables GATE_SHARD, GATE_SHARD_DURATIONS,
   GATE_PROBE_MODULES and GATE_PROBE_OUT, and untyped JSON files).

Progress file format history (`PROGRESS_FORMAT`, its own number: a new progress file leaves the
cached `MeasurementRecord`s valid):
1. the first: one `Collected` line, then one `Finished` line per test, each a codec line.
"""

from __future__ import annotations

from dataclasses import dataclass

FORMAT = 1
PROGRESS_FORMAT = 1

SPLIT_OPTION = "--gate-split"
"""`K/N`: this process runs the K-th (1-based) of N shares of the suite."""
SPLIT_DURATIONS_OPTION = "--gate-split-durations"
"""A `SplitDurations` file: the last measurement's seconds per test, which balance the shares."""
GUARDED_MODULE_OPTION = "--gate-guarded-module"
"""A guarded module's name (repeated): where it was imported from goes into the report."""
IMPORT_REPORT_OPTION = "--gate-import-report"
"""Where the plugin writes its `ImportReport` at the end of the session."""
PROGRESS_OPTION = "--gate-progress"
"""Where the plugin appends its progress (`PROGRESS_FORMAT`): a `Collected` line once the collection
is done, then a `Finished` line as each test ends."""


@dataclass(frozen=True)
class SplitDurations:
    seconds: dict[str, float]
    """pytest node id -> seconds (setup, call and teardown), as the last measurement took them."""


@dataclass(frozen=True)
class Collected:
    """The progress file's first line."""

    tests: tuple[str, ...]
    """The node ids this process will run: its share, after -k, -m and the split."""


@dataclass(frozen=True)
class Finished:
    """Each line after the first: one test done, its teardown included."""

    test: str


@dataclass(frozen=True)
class EnvironmentReads:
    read: tuple[str, ...]
    """The environment variables the suite read by name."""
    whole: str | None
    """Why the whole environment counts (the suite iterated over it, or started a process), or None."""


@dataclass(frozen=True)
class ImportReport:
    guarded: dict[str, str | None]
    """Guarded module name -> the file it was imported from (None: a module without a file)."""
    files: tuple[str, ...]
    """Every module file the suite imported from the project (relative paths)."""
    environment: EnvironmentReads


@dataclass(frozen=True)
class MeasurementRecord:
    """What a green measurement leaves beside coverage.py's data, for the next run with the same key."""

    key: str
    durations: dict[str, float]
    seconds: float
    imported: tuple[str, ...]
    processes: int
    environment: EnvironmentReads
    environment_digest: str
    """The digest of the variables read, as they were: a variable with another value now misses."""
