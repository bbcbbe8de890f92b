"""The mutmut driver's boundary (`gate.mutmut_adapter.driver`): what the gate and its driver
process, and the driver and its forked workers, say to each other.

- gate -> driver: a `GenerateSpec` or a `RunSpec` file (`spec_path`), then, in the run phase, one
  `Jobs` line on the driver's stdin;
- driver -> gate: one event per line on stdout, `@@gate <event> <message>` (`Event`): an `Outcome`
  per mutant, then `done` with the phase's result (`Generation` or `RunResult`), or the `ErrorReport`
  of the error that stopped it (its `gate.errors` class by slug, raised as that class again);
- worker -> driver: the `WorkerResult` file each worker writes when its tests finish, and the
  `Widened` file beside it where its test ids had to be widened (`results_dir`);
- driver -> later driver: the `Sidecar` beside each mutated file (`sidecar_path`), mutmut's
  per-file cache of the gate's mutants.

Everything is read with `gate.wire.codec`: a missing or unknown field is a `WireError` naming it.

Format history:
1. the first typed format. Before it (`gate.mutmut_adapter.protocol`): untyped JSON dicts, with
   "checked" and "interrupted" events that nothing read (gone: the first outcome already says
   that the forced failure failed, and the driver is only interrupted by a gate that has stopped
   reading it).

Sidecar format history (`SIDECAR_FORMAT`; a sidecar of another format is a cache miss):
2. untyped JSON with a `version` key; 3. the codec's (kind and format), its mutants `gate.result.Mutant`; 4. its key is `inputs_digest`
(it was `fingerprint`, a word kept for a finding's id).
"""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gate.errors import GateError
from gate.mutmut_adapter.naming import MUTANTS_DIR
from gate.result import Mutant, MutantStatus
from gate.scenario import Kind, Scenario
from gate.wire import codec
from gate.wire.codec import WireError

FORMAT = 1
SIDECAR_FORMAT = 4

EVENT_PREFIX = "@@gate "
RESULTS_DIR = ".gate-results"
"""The workers' result files, in mutmut's folder."""
RESULT_SUFFIX = ".json"
WIDENED_SUFFIX = ".widened"
SIDECAR_SUFFIX = ".gate.json"
"""The gate's sidecar beside a mutated copy: `mutants/<file>.gate.json`."""
TOOLS_DIR = ".gate-tools"
"""The workers' tool caches (hypothesis's, say), apart from the measurement's."""


class Phase(enum.Enum):
    GENERATE = "generate"
    RUN = "run"


# --- gate -> driver --------------------------------------------------------------------------


@dataclass(frozen=True)
class MutmutSetup:
    """What both phases configure mutmut with (`driver.configure`)."""

    source_paths: tuple[str, ...]
    """The guarded files' top folders (or files): what mutmut copies and mutates."""
    files: tuple[str, ...]
    also_copy: tuple[str, ...]
    """Everything else of the snapshot, copied beside them."""
    max_workers: int
    tests: tuple[str, ...]
    pytest_args: tuple[str, ...]
    import_roots: tuple[str, ...]


@dataclass(frozen=True)
class Span:
    """An error-handling region of a guarded file: its lines (1-based, inclusive) and kind."""

    start: int
    end: int
    kind: str

    def row(self) -> tuple[int, int, str]:
        """As `gate.operators` reads regions: (start, end, kind)."""
        return self.start, self.end, self.kind


@dataclass(frozen=True)
class OperatorSpec:
    enabled: tuple[str, ...]
    """The gate's operators the policy enables."""
    exceptions: dict[str, Any]
    """file -> the facts about its caught exception types (`gate.steps.exception_types`), for the
    files with handlers; a file without an entry has none."""

    def config(self) -> dict[str, Any]:
        """As `gate.operators.find_mutations` reads it."""
        return codec.encode(self)


@dataclass(frozen=True)
class GenerateSpec:
    setup: MutmutSetup
    regions: dict[str, tuple[Span, ...]]
    """Every guarded file -> its mutable regions (a file without any has an empty entry)."""
    operators: OperatorSpec

    def regions_of(self, rel: str) -> tuple[Span, ...]:
        """The regions of any file of mutmut's copy: none for one that is not guarded."""
        return self.regions[rel] if rel in self.regions else ()


@dataclass(frozen=True)
class RunSpec:
    setup: MutmutSetup
    memory_mb: int
    """How much more than the fork server a worker may map (0: no limit)."""


@dataclass(frozen=True)
class MutantJob:
    name: str
    tests: tuple[str, ...]
    cpu_limit: int
    """CPU seconds; the wall-clock limit is `gate.scenario.wall_limit` of it (mutmut's rule)."""
    estimated: float
    group: str = ""
    """Mutants of one function share a group: a test that killed one is tried first on the others."""
    first: str | None = None
    """The test that killed this very mutant last time: tried before this run's killers of the group."""

    @property
    def scenario(self) -> Scenario:
        return Scenario(Kind.MUTANT, self.tests, self.cpu_limit, mutant=self.name)


@dataclass(frozen=True)
class Jobs:
    """The run phase's one order, on the driver's stdin."""

    jobs: tuple[MutantJob, ...]
    check_cpu_limit: int
    """CPU seconds for each check (the forced failure, the clean runs)."""


def spec_path(work: Path, phase: Phase) -> Path:
    return work / MUTANTS_DIR / f".gate-{phase.value}-spec.json"


def tools_dir(work: Path) -> Path:
    return work / MUTANTS_DIR / TOOLS_DIR


def write_spec(path: Path, spec: GenerateSpec | RunSpec) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    codec.write(path, spec, FORMAT)


def read_spec(phase: Phase, path: Path) -> GenerateSpec | RunSpec:
    return codec.read(GenerateSpec if phase is Phase.GENERATE else RunSpec, path, FORMAT)


def jobs_line(jobs: Jobs) -> str:
    return codec.dumps(jobs, FORMAT)


def read_jobs(line: str) -> Jobs:
    return codec.loads(Jobs, line, FORMAT)


# --- driver -> gate --------------------------------------------------------------------------


class Event(enum.Enum):
    """The events a driver writes, each one line `@@gate <event> <message>`."""

    OUTCOME = "outcome"
    """An `Outcome`: one mutant's, once the checks it depends on passed."""
    DONE = "done"
    """The phase's result (`Generation` or `RunResult`): the last line of a driver that finished."""
    ERROR = "error"
    """An `ErrorReport`: the error that stopped the driver."""


@dataclass(frozen=True)
class Outcome:
    name: str
    status: MutantStatus
    killed_by: str | None
    seconds: float
    detail: str


@dataclass(frozen=True)
class Generation:
    """The generate phase's result: the in-region mutants of every guarded file."""

    mutants: tuple[Mutant, ...]
    mutmut_total: int
    """Mutations mutmut's own operators made on the guarded files, before the gate kept the in-region ones."""
    gate_total: int
    dropped_invalid: int
    """Gate mutants that did not compile (a bug in an operator; never emitted)."""
    equivalent: dict[str, int]
    """Mutants dropped as equivalent, by why."""
    seconds: float


@dataclass(frozen=True)
class RunResult:
    tested: int
    clean_checks: int


@dataclass(frozen=True)
class ErrorReport:
    slug: str
    """The slug of the error's `gate.errors` class."""
    message: str


def _error_classes(base: type[GateError]) -> list[type[GateError]]:
    return [base, *(cls for sub in base.__subclasses__() for cls in _error_classes(sub))]


def error_classes() -> dict[str, type[GateError]]:
    """Every error class of the gate, by slug: what an `ErrorReport` names."""
    return {cls.slug: cls for cls in _error_classes(GateError)}


def emit(event: Event, message: Any) -> None:
    """Driver side: one event to the gate."""
    sys.stdout.write(f"{EVENT_PREFIX}{event.value} {codec.dumps(message, FORMAT)}\n")
    sys.stdout.flush()


def emit_error(error: GateError) -> None:
    """Driver side: the error that stopped it, by its class's slug."""
    emit(Event.ERROR, ErrorReport(slug=error.slug, message=str(error)))


def parse(line: str, done: type[Generation] | type[RunResult]) -> Outcome | ErrorReport | Generation | RunResult | None:
    """Gate side: the event on a line of the driver's output (`done`: the phase's result type), or
    None for any other output."""
    if not line.startswith(EVENT_PREFIX):
        return None
    name, _, body = line[len(EVENT_PREFIX):].partition(" ")
    try:
        event = Event(name)
    except ValueError:
        raise WireError(f"driver event (format {FORMAT}): unknown event {name!r}") from None
    message_class = {Event.OUTCOME: Outcome, Event.ERROR: ErrorReport, Event.DONE: done}[event]
    return codec.loads(message_class, body, FORMAT)


def raise_error(report: ErrorReport) -> None:
    """Gate side: the driver's error report as the error class it names."""
    classes = error_classes()
    if report.slug not in classes:
        raise WireError(f"ErrorReport (format {FORMAT}): unknown error slug {report.slug!r}: {report.message}")
    raise classes[report.slug](report.message)


# --- worker -> driver ------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerResult:
    """What a worker whose tests finished writes: pytest's exit code, the first failing test."""

    exit_code: int
    killed_by: str | None
    seconds: float
    detail: str


@dataclass(frozen=True)
class Widened:
    """The selection a worker ran in place of test ids its collection did not know."""

    selection: tuple[str, ...]

    def __str__(self) -> str:
        return " ".join(self.selection)


def results_dir() -> Path:
    """The workers' result files, relative to the driver's folder (the snapshot)."""
    return Path(MUTANTS_DIR) / RESULTS_DIR


def clear_results(folder: Path) -> None:
    """An empty results folder: no result of an earlier run is read as this one's."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in [*folder.glob(f"*{RESULT_SUFFIX}"), *folder.glob(f"*{WIDENED_SUFFIX}")]:
        stale.unlink()


def write_result(folder: Path, name: str, result: WorkerResult) -> None:
    codec.write(folder / f"{name}{RESULT_SUFFIX}", result, FORMAT)


def read_result(folder: Path, name: str) -> WorkerResult | None:
    """The result the worker of `name` wrote; None when it wrote none (it died before its tests
    finished). A file that is there but not a `WorkerResult` is a `WireError`."""
    path = folder / f"{name}{RESULT_SUFFIX}"
    return codec.read(WorkerResult, path, FORMAT) if path.exists() else None


def write_widened(folder: Path, name: str, widened: Widened) -> None:
    codec.write(folder / f"{name}{WIDENED_SUFFIX}", widened, FORMAT)


def read_widened(folder: Path, name: str) -> Widened | None:
    """What the worker of `name` ran in place of its test ids; None where it ran them as given."""
    path = folder / f"{name}{WIDENED_SUFFIX}"
    return codec.read(Widened, path, FORMAT) if path.exists() else None


# --- driver -> later driver: the sidecar -----------------------------------------------------


@dataclass(frozen=True)
class SidecarInputs:
    """What the mutants of a file depend on besides its source (hashed into `Sidecar.inputs_digest`)."""

    regions: tuple[Span, ...]
    enabled: tuple[str, ...]
    exceptions: Any
    gate: str
    mutmut: str


@dataclass(frozen=True)
class Sidecar:
    inputs_digest: str
    """The digest of the file's `SidecarInputs`."""
    source_sha: str
    mutmut_total: int
    """What a plain `mutmut run` would test in this file: mutations inside trampolined functions."""
    gate_total: int
    dropped_invalid: int
    equivalent: dict[str, int]
    mutants: tuple[Mutant, ...]


def sidecar_path(rel: str) -> Path:
    return Path(MUTANTS_DIR) / f"{rel}{SIDECAR_SUFFIX}"


def write_sidecar(rel: str, sidecar: Sidecar) -> None:
    path = sidecar_path(rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec.write(path, sidecar, SIDECAR_FORMAT)


def read_sidecar(rel: str) -> Sidecar:
    return codec.read(Sidecar, sidecar_path(rel), SIDECAR_FORMAT)
