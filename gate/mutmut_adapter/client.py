"""The gate's side of mutmut: check the installed release, generate the in-region mutants, and run
them, each through a driver process (`gate.mutmut_adapter.driver`) that it talks to in JSON
(`protocol`). Nothing here imports mutmut: mutmut 3 keeps global state (a config singleton read
from the working directory, `sys.path` surgery), so only the driver, started in the snapshot, does.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gate.errors import InfrastructureError
from gate.imports import import_roots
from gate.mutmut_adapter import protocol
from gate.mutmut_adapter.protocol import MutantJob, RawOutcome
from gate.process import Child, tool_caches
from gate.result import Mutant, MutantStatus, Region

TESTED_MUTMUT = ("3.8.1",)
"""The mutmut releases the adapter was tested against; pyproject.toml pins the same."""

# mutmut's own list (internals.NEVER_MUTATE_FUNCTION_NAMES), copied so that the gate can say what
# mutmut will skip without importing it; the compatibility test keeps the two equal.
NEVER_MUTATED_NAMES = frozenset({"__getattribute__", "__setattr__", "__new__"})

# What each of mutmut's operators does (mutmut.mutation.mutators), for the reports' help texts.
MUTMUT_OPERATORS = {
    "number": "a number literal changes",
    "string": "a string literal changes (XX added around it, or its case changed)",
    "name": "a name changes (True and False swap, None becomes a value)",
    "assignment": "an assigned value becomes None (or None a value)",
    "augmented_assignment": "an augmented assignment becomes a plain one (+= becomes =)",
    "remove_unary_ops": "a unary operator is removed (not x becomes x)",
    "dict_arguments": "a keyword argument of dict() is renamed",
    "arg_removal": "an argument of a call is removed or becomes None",
    "symmetric_string_methods_swap": "a string method becomes its mirror (lstrip and rstrip swap)",
    "unsymmetrical_string_methods_swap": "a string method becomes a similar one",
    "lambda": "a lambda's body becomes None",
    "keywords": "a keyword changes (is and is not, in and not in, break and continue swap)",
    "swap_op": "an operator changes (+ and -, < and <=, and and or swap)",
    "match": "a case of a match statement is removed",
    "if_exp": "a conditional expression always takes one branch",
}


def check_mutmut() -> str:
    """The installed mutmut version, or an infrastructure error saying what is wrong."""
    try:
        version = importlib.metadata.version("mutmut")
    except importlib.metadata.PackageNotFoundError:
        raise InfrastructureError("mutmut is not installed (pip install 'mutmut==3.8.1')") from None
    if version not in TESTED_MUTMUT:
        raise InfrastructureError(
            f"mutmut {version} is installed; the gate drives mutmut's internals and is tested with "
            f"{', '.join(TESTED_MUTMUT)} only")
    return version


def unmutatable_reason(region: Region, safe_decorators: Iterable[str]) -> str | None:
    """Why mutmut cannot mutate a region (None if it can): it only trampolines top-level
    functions and methods of top-level classes, and skips decorated ones."""
    if region.unit_problem:
        return region.unit_problem
    if region.unit is None:
        return "outside a function (module or class body); mutmut mutates functions only"
    name = region.unit.rsplit(".", 1)[-1]
    if name in NEVER_MUTATED_NAMES:
        return f"in {name}, which mutmut never mutates"
    decorators = [" ".join(d.split()) for d in region.unit_decorators]
    if decorators in (["staticmethod"], ["classmethod"]):
        return None
    safe = {" ".join(d.split()) for d in safe_decorators}
    unsafe = [d for d in decorators if d not in safe]
    if unsafe:
        return (f"{region.unit} is decorated with @{unsafe[0]}, which mutmut skips "
                "(list it in safe_decorators if it only wraps calls)")
    return None


@dataclass(frozen=True)
class Generation:
    mutants: tuple[Mutant, ...]
    mutmut_total: int
    """Mutations mutmut's own operators made on the guarded files, before the gate kept the in-region ones."""
    gate_total: int
    dropped_invalid: int
    """Gate mutants that did not compile (a bug in an operator; never emitted)."""
    equivalent: dict[str, int]
    """Mutants dropped as equivalent, by why."""
    seconds: float


def generate(work: Path, *, files: list[str], regions: dict[str, list[tuple[int, int, str]]],
             operator_spec: dict[str, Any], max_workers: int, tests: list[str],
             pytest_args: list[str]) -> Generation:
    """Generate (or reuse from mutmut's cache) the in-region mutants of `files` in `work/mutants`."""
    spec = _base_spec(work, files, max_workers, tests, pytest_args)
    spec.update(regions={f: regions.get(f, []) for f in files}, operators=operator_spec)
    out = _finish_driver(_start_driver(work, "generate", spec), "generate")
    return Generation(
        mutants=tuple(Mutant(**m) for m in out["mutants"]),
        mutmut_total=out["mutmut_total"], gate_total=out["gate_total"],
        dropped_invalid=out["dropped_invalid"], equivalent=out["equivalent"], seconds=out["seconds"])


class Run:
    """mutmut's fork server, started before the mutants to test are known, so that it imports the
    code and collects the tests while the baseline still runs. `test` hands it the jobs and streams
    the outcomes; `abandon` lets it go. Start it only once the mutants are generated: it imports
    the mutated copy."""

    def __init__(self, work: Path, *, files: list[str], max_workers: int, tests: list[str],
                 pytest_args: list[str], memory_mb: int) -> None:
        spec = _base_spec(work, files, max_workers, tests, pytest_args)
        spec.update(memory_mb=memory_mb)
        self._driver = _start_driver(work, "run", spec, stdin=True)

    def test(self, jobs: list[MutantJob], *, check_cpu_limit: int,
             on_outcome: Callable[[RawOutcome], None]) -> None:
        """Test `jobs`; `on_outcome` hears each result as it lands. Before an outcome counts, a forced
        failure of every mutated function must fail the tests, and the test that killed it must pass
        on the unmutated copy (both through the same fork server)."""
        def on_event(event: dict[str, Any]) -> None:
            if event["event"] == "outcome":
                on_outcome(RawOutcome(name=event["name"], status=MutantStatus(event["status"]),
                                      killed_by=event["killed_by"], seconds=event["seconds"],
                                      detail=event["detail"]))

        self._driver.send(json.dumps({"jobs": [asdict(j) for j in jobs], "check_cpu_limit": check_cpu_limit}))
        _finish_driver(self._driver, "run", on_event)

    def abandon(self) -> None:
        self._driver.stop()


def _base_spec(work: Path, files: list[str], max_workers: int, tests: list[str],
               pytest_args: list[str]) -> dict[str, Any]:
    guarded_roots = sorted({f.split("/", 1)[0] for f in files})
    also_copy = sorted(p.name for p in work.iterdir() if p.name not in (*guarded_roots, protocol.MUTANTS_DIR))
    return {"source_paths": guarded_roots, "files": files, "also_copy": also_copy,
            "max_workers": max_workers, "tests": tests, "pytest_args": pytest_args,
            "import_roots": import_roots(work, files)}


def _start_driver(work: Path, phase: str, spec: dict[str, Any], stdin: bool = False) -> Child:
    check_mutmut()
    spec_path = work / protocol.MUTANTS_DIR / f".gate-{phase}-spec.json"
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(spec))
    # the workers' tool caches apart from the baseline's (cache/coverage/tools): a failing example
    # a mutant made hypothesis save is never replayed against the unmutated code
    return Child(["-P", "-m", "gate.mutmut_adapter.driver", phase, str(spec_path)], cwd=work, stdin=stdin,
                 env=tool_caches(work / protocol.MUTANTS_DIR / ".gate-tools"))


def _finish_driver(driver: Child, phase: str,
                   on_event: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    final: dict[str, Any] = {}

    def on_line(line: str) -> None:
        event = protocol.parse(line)
        if event is None:
            return
        if event["event"] in ("error", "done"):
            final[event["event"]] = event
        elif on_event is not None:
            on_event(event)

    completed = driver.finish(on_line)
    if "error" in final:
        protocol.raise_error(final["error"])
    if completed.returncode != 0 or "done" not in final:
        tail = " | ".join(line for line in completed.output.strip().splitlines()[-3:] if line.strip())
        raise InfrastructureError(f"mutmut ({phase}) crashed with exit code {completed.returncode}: {tail}")
    return final["done"]["result"]
