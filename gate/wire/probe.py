"""The survivors' probe's boundary: the gate (`gate.steps.explain`) and `python -P -m
gate.mutmut_adapter.probe SPEC OUT`, and, inside the probe, each forked run and the probe.

- gate -> probe: a `ProbeSpec` file (the survivors by group, their tests, the pytest arguments,
  the import roots, the workers and the deadline);
- probe run -> probe: a `RunReport` through the forked child's pipe (its exit code, each test's
  outcome, the recorder's `Call`s by test, and the first difference a mutant's run `Found`), or a
  `ChangedRun` for a run of a test with a suggested assertion put in;
- probe -> gate: a `ProbeResults` file, one `SurvivorResult` for every survivor of the spec (one the
  probe did not reach says so: `Status.BUDGET`).

Format history:
1. the first typed format (before it: untyped JSON, read with defaults for missing keys).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from gate.result import Suggestion

FORMAT = 1


# ------------------------------------------------------------------------------ gate -> probe


@dataclass(frozen=True)
class ProbeGroup:
    """The survivors of one function with the same tests."""

    module: str
    short: str
    """The first mutant's name in its module (`x_f__mutmut_3`): which mutants table to wrap."""
    mutants: tuple[str, ...]
    tests: tuple[str, ...]
    """In the order likeliest to show a difference first."""
    durations: dict[str, float]
    """The measurement's seconds per test, which size the rounds."""


@dataclass(frozen=True)
class ProbeSpec:
    groups: tuple[ProbeGroup, ...]
    pytest_args: tuple[str, ...]
    import_roots: tuple[str, ...]
    workers: int
    deadline: float | None
    """Wall-clock time (`time.time()`) after which nothing starts and what runs is stopped."""


# ------------------------------------------------------------------------------ what a call left


@dataclass(frozen=True)
class Held:
    """An object a call could change besides `self`, described: its type and attributes, or freed."""

    type: str
    freed: bool
    state: dict[str, str]
    """Empty when it was freed."""


@dataclass(frozen=True)
class End:
    """`self` and the held objects again at the test's end."""

    self_state: dict[str, str]
    freed: bool
    held: dict[str, Held]


@dataclass(frozen=True)
class Site:
    """Where the running test made a call: its line, whether it called directly, and the names the
    test has there for the call's `self` and mocks."""

    line: int
    direct: bool
    names: dict[str, str]


@dataclass(frozen=True)
class Call:
    """What one call of a probed function left that a test could have read (`gate.mutmut_adapter.
    recorder`); None where it was not recorded (`raised` None: it returned)."""

    via: str
    unobserved: str | None
    """Why it could not be recorded; then it cannot be compared."""
    site: Site | None
    returned: str | None
    raised: str | None
    cause: str | None
    context: str | None
    suppress_context: bool | None
    frames: tuple[str, ...] | None
    self_type: str
    self_state: dict[str, str]
    held: dict[str, Held]
    globals: dict[str, str]
    logs: tuple[str, ...]
    mocks: dict[str, tuple[str, ...]]
    end: End | None


# ------------------------------------------------------------------------------ what differs


class Target(enum.Enum):
    """What a suggested assertion reads."""

    RETURNED = "returned"
    RAISED = "raised"
    SELF = "self"
    LOG = "log"
    MOCK = "mock"


@dataclass(frozen=True)
class Check:
    """What a suggested assertion needs (`gate.suggestions`): the original's value, and the mutant's
    where the assertion depends on it."""

    target: Target
    original: Any
    mutant: Any = None
    part: str | None = None
    """Of a raised exception: type, cause, context, suppress_context or frames."""
    attr: str | None = None
    """Of `self`: the attribute."""
    mock: str | None = None
    """Of a mock: where the call found it (`global torch.cuda.empty_cache`)."""


@dataclass(frozen=True)
class Difference:
    """One call's first difference between the original and the mutant (`gate.observation`)."""

    what: str
    read: str | None
    """The name an assertion on it reads, or None."""
    check: Check | None
    site: Site | None


@dataclass(frozen=True)
class Where:
    """Where a test function's code was defined: a file relative to the snapshot, its first line."""

    file: str
    line: int


@dataclass(frozen=True)
class Found:
    """A test's first difference on a mutant, and its later calls' (which may give a suggestion)."""

    test: str
    first: Difference
    others: tuple[Difference, ...]
    where: Where | None


# ------------------------------------------------------------------------------ run -> probe


@dataclass(frozen=True)
class Outcome:
    """How one test ended in a run."""

    passed: bool
    message: str | None
    """How it did not pass (`failed in call: ...`), or None."""


NO_EXIT = -1
"""The exit code shown for a run that died or was stopped before pytest ended."""


@dataclass(frozen=True)
class RunReport:
    """One forked run of a group's tests on the original or a mutant, under observation."""

    exit_code: int
    tests: dict[str, Outcome]
    calls: dict[str, tuple[Call, ...]]
    """By test; a test without an entry made no call."""
    found: Found | None
    """A mutant's run: the first difference from the original's runs, or None."""


@dataclass(frozen=True)
class ChangedRun:
    """One forked run of a test with a suggested assertion put in."""

    exit_code: int


# ------------------------------------------------------------------------------ probe -> gate


class Status(enum.Enum):
    DONE = "done"
    """Looked at: `found` is its difference, or None for none."""
    NOT_OBSERVED = "not observed"
    """No test could be observed (`excluded`, `why`)."""
    DIED = "died"
    """Its run on the mutant stopped or died: tried again on the next run."""
    BUDGET = "budget"
    """Not reached, or not finished, within the deadline."""


@dataclass(frozen=True)
class SurvivorResult:
    status: Status
    excluded: dict[str, str]
    """The tests that could not be compared, with why, in the order they were found."""
    tests: int
    """How many tests it has."""
    why: str | None
    """Why nothing was observed, when the probe knows better than `excluded`."""
    found: Found | None
    calls_seen: bool
    """Whether any call of the function was seen."""
    suggestion: Suggestion | None
    """The suggested assertion verified to pass on the original and fail on the mutant."""
    unfinished: bool
    """Explained, but its suggestion's verification was cut short: explained again next time."""


def not_reached(tests: int) -> SurvivorResult:
    """The result of a survivor the probe did not reach before its deadline."""
    return SurvivorResult(status=Status.BUDGET, excluded={}, tests=tests, why=None, found=None, calls_seen=False,
                          suggestion=None, unfinished=False)


@dataclass(frozen=True)
class ProbeResults:
    survivors: dict[str, SurvivorResult]
    """By mutant name: every survivor of the spec."""
