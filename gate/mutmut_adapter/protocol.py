"""What the gate and its mutmut driver process say to each other: the driver writes one JSON event
per line on stdout (`@@gate {...}`), the gate writes the jobs as one JSON line on the driver's stdin.
An error crosses as the slug of its `gate.errors` class, and is raised as that class again."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from gate.errors import GateError, InfrastructureError
from gate.result import MutantStatus

EVENT_PREFIX = "@@gate "
MUTANTS_DIR = "mutants"
"""mutmut's folder in the snapshot: its copy of the project, with the mutated files."""


def _error_classes(base: type[GateError]) -> list[type[GateError]]:
    return [base, *(cls for sub in base.__subclasses__() for cls in _error_classes(sub))]


ERRORS: dict[str, type[GateError]] = {cls.slug: cls for cls in _error_classes(GateError)}
"""Every error class of the gate, by slug: what a driver's error event names."""


@dataclass(frozen=True)
class MutantJob:
    name: str
    tests: tuple[str, ...]
    cpu_limit: int
    """CPU seconds; the wall-clock limit is half of it (mutmut's rule)."""
    estimated: float
    group: str = ""
    """Mutants of one function share a group: a test that killed one is tried first on the others."""
    first: str | None = None
    """The test that killed this very mutant last time: tried before this run's killers of the group."""


@dataclass(frozen=True)
class RawOutcome:
    name: str
    status: MutantStatus
    killed_by: str | None
    seconds: float
    detail: str


def emit(event: str, **fields: Any) -> None:
    """Driver side: one event to the gate."""
    sys.stdout.write(EVENT_PREFIX + json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def emit_error(error: GateError) -> None:
    """Driver side: the error that stopped it, by its class's slug."""
    emit("error", slug=error.slug, message=str(error))


def parse(line: str) -> dict[str, Any] | None:
    """Gate side: the event on a line of the driver's output, or None for any other output."""
    return json.loads(line[len(EVENT_PREFIX):]) if line.startswith(EVENT_PREFIX) else None


def raise_error(event: dict[str, Any]) -> None:
    """Gate side: the driver's error event as the error class it names."""
    raise ERRORS.get(event["slug"], InfrastructureError)(event["message"])
