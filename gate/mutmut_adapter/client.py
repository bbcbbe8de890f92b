"""The gate's side of mutmut: check the installed release, generate the in-region mutants, and run
them, each through a driver process (`gate.mutmut_adapter.driver`) that it talks to in typed,
versioned messages (`gate.wire.driver`). Nothing here imports mutmut: mutmut 3 keeps global state (a config singleton read
from the working directory, `sys.path` surgery), so only the driver, started in the snapshot, does.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterable
from pathlib import Path

from gate.errors import InfrastructureError
from gate.imports import import_roots
from gate.mutmut_adapter.naming import MUTANTS_DIR
from gate.policy import IDENTITY_DECORATORS
from gate.process import Child, tool_caches
from gate.result import Region
from gate.wire import driver as wire
from gate.wire.driver import Generation, MutantJob, OperatorSpec, Outcome, Phase, Span

__all__ = ["Generation", "OperatorSpec", "Run", "check_mutmut", "request_generation", "unmutatable_reason"]

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
    functions and methods of top-level classes, and skips decorated ones, but for those whose
    decorators are safe (the policy's, and the identity decorators the regions name by their
    qualified names)."""
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
    safe = {" ".join(d.split()) for d in safe_decorators} | IDENTITY_DECORATORS
    unsafe = [d for d in decorators if d not in safe]
    if unsafe:
        return (f"{region.unit} is decorated with @{unsafe[0]}, which mutmut skips "
                "(list it in safe_decorators if it only wraps calls)")
    return None


def request_generation(work: Path, *, files: list[str], regions: dict[str, list[tuple[int, int, str]]],
                       operators: OperatorSpec, max_workers: int, tests: list[str],
                       pytest_args: list[str]) -> Generation:
    """Generate (or reuse from mutmut's cache) the in-region mutants of `files` in `work/mutants`."""
    spec = wire.GenerateSpec(
        setup=_setup(work, files, max_workers, tests, pytest_args),
        regions={f: tuple(Span(*row) for row in regions.get(f, [])) for f in files}, operators=operators)
    done = _finish_driver(_start_driver(work, Phase.GENERATE, spec), Phase.GENERATE, Generation)
    assert isinstance(done, Generation)
    return done


class Run:
    """mutmut's fork server, started before the mutants to test are known, so that it imports the
    code and collects the tests while the measurement still runs. `test` hands it the jobs and streams
    the outcomes; `abandon` lets it go. Start it only once the mutants are generated: it imports
    the mutated copy."""

    def __init__(self, work: Path, *, files: list[str], max_workers: int, tests: list[str],
                 pytest_args: list[str], memory_mb: int) -> None:
        spec = wire.RunSpec(setup=_setup(work, files, max_workers, tests, pytest_args), memory_mb=memory_mb)
        self._driver = _start_driver(work, Phase.RUN, spec, stdin=True)

    def test(self, jobs: list[MutantJob], *, check_cpu_limit: int,
             on_outcome: Callable[[Outcome], None]) -> None:
        """Test `jobs`; `on_outcome` hears each result as it lands. Before an outcome counts, a forced
        failure of every mutated function must fail the tests, and the test that killed it must pass
        on the unmutated copy (both through the same fork server)."""
        self._driver.send(wire.jobs_line(wire.Jobs(jobs=tuple(jobs), check_cpu_limit=check_cpu_limit)))
        _finish_driver(self._driver, Phase.RUN, wire.RunResult, on_outcome)

    def abandon(self) -> None:
        self._driver.stop()


def _setup(work: Path, files: list[str], max_workers: int, tests: list[str],
           pytest_args: list[str]) -> wire.MutmutSetup:
    guarded_roots = sorted({f.split("/", 1)[0] for f in files})
    also_copy = sorted(p.name for p in work.iterdir() if p.name not in (*guarded_roots, MUTANTS_DIR))
    return wire.MutmutSetup(source_paths=tuple(guarded_roots), files=tuple(files), also_copy=tuple(also_copy),
                            max_workers=max_workers, tests=tuple(tests), pytest_args=tuple(pytest_args),
                            import_roots=tuple(import_roots(work, files)))


def _start_driver(work: Path, phase: Phase, spec: wire.GenerateSpec | wire.RunSpec, stdin: bool = False) -> Child:
    check_mutmut()
    spec_path = wire.spec_path(work, phase)
    wire.write_spec(spec_path, spec)
    # the workers' tool caches apart from the measurement's (cache/coverage/tools): a failing example
    # a mutant made hypothesis save is never replayed against the unmutated code
    return Child(["-P", "-m", "gate.mutmut_adapter.driver", phase.value, str(spec_path)], cwd=work, stdin=stdin,
                 env=tool_caches(wire.tools_dir(work)))


def _finish_driver(driver: Child, phase: Phase, done: type[Generation] | type[wire.RunResult],
                   on_outcome: Callable[[Outcome], None] | None = None) -> Generation | wire.RunResult:
    """Read the driver's events until it exits: its outcomes to `on_outcome`, then its result (of
    type `done`) or the error it reported, raised as the error's own class."""
    errors: list[wire.ErrorReport] = []
    results: list[Generation | wire.RunResult] = []

    def on_line(line: str) -> None:
        message = wire.parse(line, done)
        if message is None:
            return
        if isinstance(message, Outcome):
            if on_outcome is None:
                raise wire.WireError(f"the mutmut driver ({phase.value}) reported an outcome for {message.name}, "
                                     "which only the run phase reports")
            on_outcome(message)
        elif isinstance(message, wire.ErrorReport):
            errors.append(message)
        else:
            results.append(message)

    completed = driver.finish(on_line)
    if errors:
        wire.raise_error(errors[-1])
    if completed.returncode != 0 or not results:
        tail = " | ".join(line for line in completed.output.strip().splitlines()[-3:] if line.strip())
        raise InfrastructureError(f"mutmut ({phase.value}) crashed with exit code {completed.returncode}: {tail}")
    return results[-1]
