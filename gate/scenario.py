"""Every pytest run the gate makes of the project's tests is one `Scenario`, and what its exit says
is read here once, against pytest's own exit codes.

A scenario is a clean run (the tests on the unmutated copy: a killing test must pass there), a
forced failure (every mutated function raises: the tests must fail), a mutant (one mutant active),
or one of the probe's runs (the original or a mutant, observed). Each names the mutant mutmut's
trampolines must activate (`under_test`) and the tests to run. The time a run may take also lives
here: the gate sets a CPU-seconds limit, and a run's wall-clock limit is half of it (mutmut's rule).
This module imports nothing of pytest or mutmut, so that the gate's own process can read it."""

from __future__ import annotations

import enum
import math
import signal
from dataclasses import dataclass

CPU_PER_WALL_SECOND = 2
"""A run's CPU-seconds limit is this many times its wall-clock limit (mutmut's rule: the worker's
RLIMIT_CPU is the limit, and it is stopped after half of it on the clock)."""


def wall_limit(cpu_limit: float) -> float:
    """The wall-clock seconds a run with `cpu_limit` CPU seconds may take."""
    return cpu_limit / CPU_PER_WALL_SECOND


TIMEOUT_EXITS = frozenset({-signal.SIGXCPU, signal.SIGXCPU, 128 + signal.SIGXCPU})
"""How a worker over its CPU-seconds limit exits (the kernel's SIGXCPU, as a signal or a status)."""


def timed_out(worker_exit: int, seconds: float, wall: float) -> bool:
    """Whether a worker that died before its tests finished was stopped for its time: over its CPU
    limit, or killed by mutmut's SIGKILL once past its wall-clock limit `wall`."""
    return worker_exit in TIMEOUT_EXITS or (worker_exit == -signal.SIGKILL and seconds >= wall)


def cpu_limit(wall_seconds: float) -> int:
    """The CPU-seconds limit (whole seconds, rounded up) that allows `wall_seconds` on the clock."""
    return math.ceil(wall_seconds * CPU_PER_WALL_SECOND)


class PytestExit(enum.IntEnum):
    """pytest's exit codes (`pytest.ExitCode`, which a test keeps equal), without importing pytest."""

    OK = 0
    TESTS_FAILED = 1
    INTERRUPTED = 2
    INTERNAL_ERROR = 3
    USAGE_ERROR = 4
    NO_TESTS_COLLECTED = 5
    MAX_WARNINGS_ERROR = 6
    """More warnings than `--max-warnings` allows (pytest 9)."""

    @classmethod
    def describe(cls, code: int) -> str:
        """`code` in words: pytest's name for it, or "an unknown exit code"."""
        try:
            return cls(code).name.lower().replace("_", " ")
        except ValueError:
            return "an unknown exit code"


class Kind(enum.Enum):
    CLEAN_RUN = "clean-run"
    FORCED_FAILURE = "forced-failure"
    MUTANT = "mutant"
    PROBE_ORIGINAL = "probe-original"
    PROBE_MUTANT = "probe-mutant"


class Verdict(enum.Enum):
    """What a finished run says, whatever the scenario: its tests passed, a test failed, or the run
    itself failed (interrupted, an internal or usage error, no tests) and says nothing."""

    PASSED = "passed"
    FAILED = "failed"
    BROKEN = "broken"


def verdict_of(exit_code: int) -> Verdict:
    """The one reading of a pytest exit code: only exit 1 says a test noticed something."""
    if exit_code == PytestExit.OK:
        return Verdict.PASSED
    if exit_code == PytestExit.TESTS_FAILED:
        return Verdict.FAILED
    return Verdict.BROKEN


@dataclass(frozen=True)
class Scenario:
    kind: Kind
    tests: tuple[str, ...]
    cpu_limit: int
    mutant: str = ""
    """The mutant a MUTANT or PROBE_MUTANT scenario activates (mutmut's name for it)."""
    key: str = ""
    """What tells two scenarios of one kind apart in one run (a clean run's number)."""

    @property
    def expected(self) -> Verdict | None:
        """What a check's run must end in for the run to go on (a forced failure must fail, a clean
        run must pass); None for a mutant and the probe's runs, whose verdict is the finding."""
        return {Kind.FORCED_FAILURE: Verdict.FAILED, Kind.CLEAN_RUN: Verdict.PASSED}.get(self.kind)

    @property
    def label(self) -> str:
        """A name unique in one run, for logs and for the runner's bookkeeping."""
        return f"{self.kind.value}:{self.mutant or self.key}"
