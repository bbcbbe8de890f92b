"""The one module that knows mutmut: generate mutants, register the gate's operators, run by name.

mutmut 3 keeps global state (a config singleton read from the working directory, `fork` as the
start method, `sys.path` surgery), so everything that touches it runs in a driver process,
`python -P -m gate.mutation`, started in the gate's snapshot folder. The gate side of this module
writes the driver a JSON spec, reads back JSON, and maps mutmut's raw exit codes to `MutantStatus`.

- generate: mutmut's own `create_mutants` (its copy to `mutants/`, its operators, trampolines
  and per-file cache), with `mutate_file_contents` wrapped so that only mutations inside the
  error-handling regions are kept, the gate's operators (`gate.operators`) are added as mutmut
  `Mutation`s, and a sidecar `<file>.gate.json` records, per mutant name, its operator, changed
  lines and diff.
- run: mutmut's `ForkServerRunner` (torch is not fork-safe) with a test runner that runs each
  mutant's tests in the order given, under a memory limit, and writes who killed it.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
import hashlib
import importlib.metadata
import io
import json
import os
import resource
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gate.errors import InfrastructureError, RedBaselineError
from gate.imports import import_roots
from gate.process import Child, tool_caches
from gate.regions import Region
from gate.result import MutantStatus

TESTED_MUTMUT = ("3.8.1",)
"""The mutmut releases this module was tested against; pyproject.toml pins the same."""

# mutmut's own list (mutmut.mutation.file_mutation.NEVER_MUTATE_FUNCTION_NAMES), copied so that the
# gate can say what mutmut will skip without importing it; a test keeps the two equal.
NEVER_MUTATED_NAMES = frozenset({"__getattribute__", "__setattr__", "__new__"})
SIDECAR_VERSION = 1
EVENT_PREFIX = "@@gate "
FORCED_FAIL, CLEAN_RUN = "fail", "gate-clean-run"


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


def levers_off() -> set[str]:
    """Speed levers a benchmark switches off to measure what each buys (`GATE_LEVERS_OFF=a,b`):
    `preload` (the fork server imports torch, the code and the tests once), `freeze` (gc.freeze
    in the fork server), `kept-session` (the fork server's collected pytest session, run by each
    worker), `line-tests` (per-line test selection), `killer-first` (last killer runs first),
    `baseline-shards` (the baseline split across the workers)."""
    return {name.strip() for name in os.environ.get("GATE_LEVERS_OFF", "").split(",") if name.strip()}


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


# ---------------------------------------------------------------------------------------------
# Gate side


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
class GeneratedMutant:
    name: str
    """mutmut's name: `package.module.xǁClassǁmethod__mutmut_3`."""
    file: str
    unit: str
    """The function mutmut copied (`Class.method`)."""
    operator: str
    origin: str
    """`mutmut` or `gate`."""
    start: int
    end: int
    """The original lines the mutant changes (1-based, inclusive)."""
    original: str
    replacement: str
    diff: str


@dataclass(frozen=True)
class Generation:
    mutants: tuple[GeneratedMutant, ...]
    mutmut_total: int
    """Mutations mutmut's own operators made on the guarded files, before the gate kept the in-region ones."""
    gate_total: int
    dropped_invalid: int
    """Gate mutants that did not compile (a bug in an operator; never emitted)."""
    seconds: float


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


def generate(work: Path, *, files: list[str], regions: dict[str, list[tuple[int, int, str]]],
             operator_spec: dict[str, Any], max_workers: int, tests: list[str],
             pytest_args: list[str]) -> Generation:
    """Generate (or reuse from mutmut's cache) the in-region mutants of `files` in `work/mutants`."""
    spec = _base_spec(work, files, max_workers, tests, pytest_args)
    spec.update(regions={f: regions.get(f, []) for f in files}, operators=operator_spec)
    out = _finish_driver(_start_driver(work, "generate", spec), "generate")
    return Generation(
        mutants=tuple(GeneratedMutant(**m) for m in out["mutants"]),
        mutmut_total=out["mutmut_total"], gate_total=out["gate_total"],
        dropped_invalid=out["dropped_invalid"], seconds=out["seconds"])


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
    also_copy = sorted(p.name for p in work.iterdir() if p.name not in (*guarded_roots, "mutants"))
    return {"source_paths": guarded_roots, "files": files, "also_copy": also_copy,
            "max_workers": max_workers, "tests": tests, "pytest_args": pytest_args,
            "import_roots": import_roots(work, files)}


def _start_driver(work: Path, phase: str, spec: dict[str, Any], stdin: bool = False) -> Child:
    check_mutmut()
    spec_path = work / "mutants" / f".gate-{phase}-spec.json"
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(spec))
    # the workers' tool caches apart from the baseline's (cache/coverage/tools): a failing example
    # a mutant made hypothesis save is never replayed against the unmutated code
    return Child(["-P", "-m", "gate.mutation", phase, str(spec_path)], cwd=work, stdin=stdin,
                 env=tool_caches(work / "mutants" / ".gate-tools"))


def _finish_driver(driver: Child, phase: str,
                   on_event: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    final: dict[str, Any] = {}

    def on_line(line: str) -> None:
        if not line.startswith(EVENT_PREFIX):
            return
        event = json.loads(line[len(EVENT_PREFIX):])
        if event["event"] == "error":
            final["error"] = event
        elif event["event"] == "done":
            final.update(event)
        elif on_event is not None:
            on_event(event)

    completed = driver.finish(on_line)
    if "error" in final:
        error = final["error"]
        raise (RedBaselineError if error["kind"] == "red-baseline" else InfrastructureError)(error["message"])
    if completed.returncode != 0 or "result" not in final:
        tail = " | ".join(line for line in completed.output.strip().splitlines()[-3:] if line.strip())
        raise InfrastructureError(f"mutmut ({phase}) crashed with exit code {completed.returncode}: {tail}")
    return final["result"]


# ---------------------------------------------------------------------------------------------
# Driver side: runs in `python -P -m gate.mutation <phase> <spec>`, working directory = snapshot


def _emit(event: str, **fields: Any) -> None:
    sys.stdout.write(EVENT_PREFIX + json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def _configure_mutmut(spec: dict[str, Any]) -> None:
    """Install our own mutmut Config before any mutmut module reads `pyproject.toml` for one."""
    import mutmut.configuration as configuration

    configuration._config = configuration.Config(
        also_copy=[Path(p) for p in spec["also_copy"]],
        only_mutate=[], do_not_mutate=[], do_not_mutate_patterns=[],
        max_stack_depth=-1, debug=False,
        source_paths=[Path(p) for p in spec["source_paths"]],
        resolved_mutated_source_paths=[Path.cwd().resolve() / "mutants" / p for p in spec["source_paths"]],
        pytest_add_cli_args=["-p", "no:cacheprovider", *spec["pytest_args"]],
        pytest_add_cli_args_test_selection=list(spec["tests"]),
        mutate_only_covered_lines=False,
        timeout_multiplier=1.0, timeout_constant=0.0,  # the gate computes each mutant's limit itself
        type_check_command=[], use_setproctitle=True,
        track_dependencies=False, dependency_tracking_depth=-1,
        cache_invalidation_files=[], cache_invalidation_exclude=[], on_dependency_change="ignore",
        use_git_change_detection=False,
        process_isolation=configuration.ProcessIsolation.FORKSERVER,
        forkserver_warmup=(configuration.ForkServerWarmup.NONE if "preload" in levers_off()
                           else configuration.ForkServerWarmup.COLLECT),
        max_forkserver_restarts=3, preload_modules_file=None,
        log_to_file=False, log_file_path="mutants/mutmut-debug.log",
    )


def _driver_generate(spec: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    import mutmut.__main__ as mutmut_main
    from mutmut.mutation.trampoline import set_mutant_under_test
    from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir, walk_source_files

    files = set(spec["files"])
    _prune_stale_mutants(spec)
    mutmut_main.mutate_file_contents = _gate_mutate_file_contents(spec)

    set_mutant_under_test("mutant_generation")
    Path("mutants").mkdir(exist_ok=True)
    copy_src_dir()
    copy_also_copy_files()
    # mutmut's create_mutants forks a Pool per run; one file after another is as fast for the
    # handful of files a gate guards and cannot deadlock on a lock held at fork time.
    for path in walk_source_files():
        outcome = mutmut_main.create_file_mutants(path)
        if outcome.error is not None:
            raise outcome.error

    mutants, mutmut_total, gate_total, dropped = [], 0, 0, 0
    for rel in sorted(files):
        sidecar = json.loads(_sidecar_path(rel).read_text())
        mutants.extend(sidecar["mutants"])
        mutmut_total += sidecar["mutmut_total"]
        gate_total += sidecar["gate_total"]
        dropped += sidecar["dropped_invalid"]
    return {"mutants": mutants, "mutmut_total": mutmut_total, "gate_total": gate_total,
            "dropped_invalid": dropped, "seconds": time.monotonic() - started}


def _fingerprint(spec: dict[str, Any], rel: str) -> str:
    """What the mutants of a file depend on besides its source: its regions, the operators and
    the exception types they see, and the versions of the code that generates them."""
    from gate import __version__

    operators = spec["operators"]
    stable = {"regions": spec["regions"].get(rel, []), "enabled": operators.get("enabled"),
              "exceptions": operators.get("exceptions", {}).get(rel), "gate": __version__,
              "mutmut": importlib.metadata.version("mutmut")}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()


def _sidecar_path(rel: str) -> Path:
    return Path("mutants") / f"{rel}.gate.json"


def _prune_stale_mutants(spec: dict[str, Any]) -> None:
    """Drop mutmut's copies that its mtime check would wrongly reuse: changed content, changed
    regions or operators, or files that no longer exist in the snapshot. mutmut copies the rest
    of the project (tests, conftest.py) over the old copy and never deletes: a file deleted from
    the project is deleted from the copy here, or pytest would still load it."""
    for name in spec["also_copy"]:
        base = Path("mutants") / name
        if base.is_dir() and Path(name).is_dir():
            for copy in [c for c in base.rglob("*") if c.is_file() and "__pycache__" not in c.parts]:
                if not Path(copy.relative_to("mutants")).exists():
                    copy.unlink()
    for root in spec["source_paths"]:
        base = Path("mutants") / root
        candidates = [base] if base.is_file() else (base.rglob("*") if base.is_dir() else [])
        for copy in [c for c in candidates if c.is_file()]:
            rel = copy.relative_to("mutants").as_posix()
            if rel.endswith((".meta", ".spans", ".gate.json")):
                continue
            original = Path(rel)
            if not original.exists():
                _remove_mutant_copy(rel)
            elif rel.endswith(".py"):
                if not _sidecar_matches(rel, original.read_bytes(), _fingerprint(spec, rel)):
                    _remove_mutant_copy(rel)
            elif copy.read_bytes() != original.read_bytes():
                copy.unlink()


def _sidecar_matches(rel: str, source: bytes, fingerprint: str) -> bool:
    try:
        sidecar = json.loads(_sidecar_path(rel).read_text())
    except (OSError, ValueError):
        return False
    return (sidecar.get("version") == SIDECAR_VERSION and sidecar.get("fingerprint") == fingerprint
            and sidecar.get("source_sha") == hashlib.sha256(source).hexdigest())


def _remove_mutant_copy(rel: str) -> None:
    for suffix in ("", ".meta", ".spans", ".gate.json"):
        (Path("mutants") / f"{rel}{suffix}").unlink(missing_ok=True)


def _gate_mutate_file_contents(spec: dict[str, Any]) -> Callable[..., Any]:
    """A replacement for mutmut's `mutate_file_contents` that keeps in-region mutations only and
    adds the gate's operators; it runs in mutmut's generation pool, once per changed file."""
    from dataclasses import replace

    from libcst.metadata import MetadataWrapper, PositionProvider
    from mutmut.mutation import file_mutation as fm
    from mutmut.mutation.trampoline_templates import mangle_function_name
    from mutmut.utils.format_utils import get_mutant_name

    from gate import operators

    mutmut_operators = list(fm.mutation_operators)

    def mutate_file_contents(filename: str, code: str, covered_lines: Any = None,
                             coverage_excluded_lines: Any = None) -> Any:
        rel = Path(filename).as_posix()
        regions = spec["regions"].get(rel, [])
        spans = [(start, end) for start, end, _kind in regions]
        tags: dict[int, str] = {}
        fm.mutation_operators = [(t, _tagged(op, tags)) for t, op in mutmut_operators]
        module, mutations, ignored_classes, ignored_functions = fm.create_mutations(
            filename, code, covered_lines, coverage_excluded_lines)
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        positions = wrapper.resolve(PositionProvider)
        outer = wrapper.resolve(fm.OuterFunctionProvider)
        units = _units_of(module, mangle_function_name)

        def in_region(node: Any) -> bool:
            pos = positions.get(node)
            return pos is not None and any(s <= pos.start.line and pos.end.line <= e for s, e in spans)

        candidates = [(m, tags.get(id(m.mutated_node), "mutmut"), "mutmut")
                      for m in mutations if in_region(m.original_node)]
        gate_found = operators.find_mutations(wrapper, positions, regions, spec["operators"], file=rel,
                                              ignored_lines=_ignored_lines(fm, filename, code, wrapper))
        candidates += [(fm.Mutation(c.original, c.mutated, outer.get(c.original)), c.operator, "gate")
                       for c in gate_found]

        seen: set[tuple[str, str]] = set()
        accepted, dropped = [], 0
        printed: dict[Any, list[str]] = {}  # each function's own code, printed once for all its mutants
        for mutation, operator, origin in candidates:
            function = mutation.contained_by_top_level_function
            if function not in units:  # mutmut can only trampoline top-level functions and methods
                continue
            record = _describe(module, positions, function, mutation, fm.deep_replace, printed)
            if record is None:  # a no-op: the mutant reads exactly like the original
                continue
            if record.pop("invalid"):
                dropped += 1
                continue
            key = (units[function][0], record.pop("mutated_code"))
            if key in seen:  # the same code as a mutant already kept (mutmut's come first)
                continue
            seen.add(key)
            accepted.append((mutation, operator, origin, record))

        mutated_file = fm.combine_mutations_to_source(module, [a[0] for a in accepted],
                                                      ignored_classes, ignored_functions)
        # combine_mutations_to_source numbers each function's mutants 1..n in list order
        counters: dict[Any, int] = {}
        records = {}
        for mutation, operator, origin, record in accepted:
            function = mutation.contained_by_top_level_function
            counters[function] = counters.get(function, 0) + 1
            mangled, unit = units[function]
            short = f"{mangled}__mutmut_{counters[function]}"
            records[short] = {"name": get_mutant_name(Path(filename), short), "file": rel, "unit": unit,
                              "operator": operator, "origin": origin, **record}
        if set(records) != set(mutated_file.mutant_names):
            raise RuntimeError(f"{rel}: mutmut named its mutants differently than the gate expected "
                               f"({len(records)} vs {len(mutated_file.mutant_names)})")
        _sidecar_path(rel).parent.mkdir(parents=True, exist_ok=True)
        _sidecar_path(rel).write_text(json.dumps({
            "version": SIDECAR_VERSION, "fingerprint": _fingerprint(spec, rel),
            "source_sha": hashlib.sha256(code.encode()).hexdigest(),
            # what a plain `mutmut run` would test in this file: mutations inside trampolined functions
            "mutmut_total": sum(1 for m in mutations if m.contained_by_top_level_function in units),
            "gate_total": len(gate_found), "dropped_invalid": dropped,
            "mutants": list(records.values()),
        }))
        hashes = fm._compute_mutated_function_hashes(code, module, [a[0] for a in accepted])
        return replace(mutated_file, hash_by_function_name=hashes)

    return mutate_file_contents


def _tagged(op: Callable[[Any], Any], tags: dict[int, str]) -> Callable[[Any], Iterator[Any]]:
    """Wrap one of mutmut's operators so that each node it makes remembers the operator's name."""
    name = op.__name__.removeprefix("operator_")

    def wrapper(node: Any) -> Iterator[Any]:
        for mutated in op(node):
            tags[id(mutated)] = name
            yield mutated

    return wrapper


def _units_of(module: Any, mangle: Callable[..., str]) -> dict[Any, tuple[str, str]]:
    """The functions mutmut trampolines, in module order: node -> (mangled key, `Class.method`)."""
    import libcst as cst

    units: dict[Any, tuple[str, str]] = {}
    for statement in module.body:
        if isinstance(statement, cst.FunctionDef):
            units[statement] = (mangle(name=statement.name.value, class_name=None), statement.name.value)
        elif isinstance(statement, cst.ClassDef) and isinstance(statement.body, cst.IndentedBlock):
            for method in statement.body.body:
                if isinstance(method, cst.FunctionDef):
                    units[method] = (mangle(name=method.name.value, class_name=statement.name.value),
                                     f"{statement.name.value}.{method.name.value}")
    return units


def _ignored_lines(fm: Any, filename: str, code: str, wrapper: Any) -> set[int]:
    """Lines under mutmut's `# pragma: no mutate` (and friends): the gate's operators respect them too."""
    ignored = fm.get_ignored_lines(filename, code, wrapper, set())
    return set(ignored.no_mutate_lines) | set(ignored.ignore_node_lines)


def _describe(module: Any, positions: Any, function: Any, mutation: Any,
              deep_replace: Callable[..., Any], printed: dict[Any, list[str]]) -> dict[str, Any] | None:
    """The changed lines, replacement and diff of one mutation, in the original file's coordinates."""
    def_pos = positions[function]
    indent = " " * def_pos.start.column
    bare = function.with_changes(leading_lines=(), decorators=())
    if function not in printed:
        printed[function] = textwrap.indent(module.code_for_node(bare), indent).splitlines()
    before = printed[function]
    mutated_function = deep_replace(bare, mutation.original_node, mutation.mutated_node)
    mutated_code = module.code_for_node(mutated_function)
    after = textwrap.indent(mutated_code, indent).splitlines()
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    changes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if not changes:
        return None
    first, last = changes[0], changes[-1]
    offset = def_pos.start.line
    a_start, a_end = first[1], max(last[2], first[1] + 1)
    b_start, b_end = first[3], last[4]
    try:
        compile(mutated_code, "<mutant>", "exec", dont_inherit=True)
        invalid = False
    except SyntaxError:
        invalid = True
    diff = "".join(difflib.unified_diff(
        [f"{line}\n" for line in before], [f"{line}\n" for line in after],
        fromfile="original", tofile="mutant", n=2))
    return {
        "start": offset + a_start, "end": offset + a_end - 1,
        "original": "\n".join(before[a_start:a_end]), "replacement": "\n".join(after[b_start:b_end]),
        "diff": _renumber(diff, offset - 1), "mutated_code": mutated_code, "invalid": invalid,
    }


def _renumber(diff: str, offset: int) -> str:
    """Shift a function-relative unified diff's hunk headers to file line numbers."""
    import re

    def shift(match: re.Match[str]) -> str:
        a, a_len, b, b_len = match.group(1), match.group(2), match.group(3), match.group(4)
        return f"@@ -{int(a) + offset}{a_len or ''} +{int(b) + offset}{b_len or ''} @@"

    return re.sub(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@", shift, diff, flags=re.M)


# The run phase


def _gate_runner_class(results_dir: Path, memory_mb: int) -> type:
    """mutmut's PytestRunner, plus: a memory limit, and a result file naming the first failing test.
    A worker that dies before writing it crashed (or timed out); one that writes it finished."""
    from mutmut.configuration import ForkServerWarmup, config
    from mutmut.runners.harness import BadTestExecutionCommandsException, PytestRunner
    from mutmut.utils.file_utils import change_cwd

    from gate.kept_session import KeptSession

    class FirstFailure:
        """Who failed first, and with what (`MemoryError: ...`), for the reports."""

        def __init__(self) -> None:
            self.nodeid: str | None = None
            self.message = ""

        def pytest_runtest_logreport(self, report: Any) -> None:
            if report.failed and self.nodeid is None:
                self.nodeid = report.nodeid
                crash = getattr(report.longrepr, "reprcrash", None)
                self.message = " ".join(str(getattr(crash, "message", "")).split())[:300]

        def pytest_collectreport(self, report: Any) -> None:
            if report.failed and self.nodeid is None:
                self.nodeid = f"{report.nodeid or '<collection>'} (collection)"

    class Collected:
        """The node ids one collection sees."""

        def __init__(self) -> None:
            self.ids: set[str] = set()

        def pytest_collection_modifyitems(self, items: Any) -> None:
            self.ids |= {item.nodeid for item in items}

    class GatePytestRunner(PytestRunner):
        collected: frozenset[str] | None = None
        """The node ids the fork server's warm-up collected; None without a warm-up."""
        kept: KeptSession | None = None
        """The fork server's collected session, which each worker runs its tests in; None where it
        could not be kept (then each worker runs `pytest.main`)."""
        recorder: FirstFailure | None = None
        """The kept session's recorder: each worker gets its own copy through the fork."""

        def warm_up(self) -> None:
            if config().forkserver_warmup == ForkServerWarmup.COLLECT:
                self._keep_session()
                if self.kept is None:
                    collector = Collected()
                    with change_cwd("mutants"):
                        self.execute_pytest(["--collect-only", "-qqq", *self._pytest_add_cli_args_test_selection],
                                            plugins=[collector])
                    self.collected = frozenset(collector.ids)
            else:
                super().warm_up()
            # Everything the fork server imported (torch, the tests) is now permanent: each worker's
            # pytest session ends with gc.collect(), which would otherwise walk all of it again.
            if "freeze" not in levers_off():
                gc.freeze()

        def _keep_session(self) -> None:
            if "kept-session" in levers_off():
                return
            recorder = FirstFailure()
            args = ["--rootdir=.", "--tb=native",
                    *self._pytest_args_regular_run(self._pytest_add_cli_args_test_selection),
                    *self._pytest_add_cli_args]
            try:
                with change_cwd("mutants"):
                    self.kept = KeptSession(args, [recorder])
            except Exception:  # pytest's internals moved, or the collection failed: pytest.main per worker
                self.kept = None
                return
            self.recorder, self.collected = recorder, self.kept.ids

        def run_tests(self, *, mutant_name: str | None, tests: Any) -> int:
            if mutant_name is None:
                return super().run_tests(mutant_name=None, tests=tests)
            _limit_address_space(memory_mb)
            started = time.monotonic()
            selection = stable_selection(list(tests), self.collected)
            if selection != list(tests):  # the time limit was set for the tests as given
                (results_dir / f"{mutant_name}.widened").write_text(" ".join(selection))
            items = self.kept.select(selection) if self.kept is not None else None
            recorder = self.recorder if items is not None and self.recorder is not None else FirstFailure()
            errors = io.StringIO()
            try:
                with change_cwd("mutants"), contextlib.redirect_stderr(errors):
                    if items is not None and self.kept is not None:
                        code = self.kept.run(items)
                    else:
                        code = int(self.execute_pytest(self._pytest_args_regular_run(selection), plugins=[recorder]))
                detail = ""
            except BadTestExecutionCommandsException:  # pytest refused its arguments: not the mutant's doing
                code, detail = 4, selection_error(errors.getvalue(), selection, self.collected)
            except Exception as exc:
                code, detail = 4, f"{type(exc).__name__}: {_first_line(str(exc))}"
            _write_atomic(results_dir / f"{mutant_name}.json", json.dumps(
                {"exit_code": code, "killed_by": recorder.nodeid, "seconds": time.monotonic() - started,
                 "detail": detail or recorder.message}))
            return code

    return GatePytestRunner


def stable_selection(tests: list[str], collected: frozenset[str] | None) -> list[str]:
    """The arguments to hand pytest for `tests` (the baseline's node ids, or the suite's own
    arguments, which pass unchanged). A node id this collection does not know (a parametrize id
    built from the time, say, which changes on every collection) falls back to its test function,
    or where that is gone too, to its file: more tests run, never fewer."""
    if collected is None:
        return tests
    picked: list[str] = []
    for test in tests:
        if "::" not in test or test in collected:  # an option, a path, or an id pytest will find
            picked.append(test)
            continue
        function = test.split("[", 1)[0]
        found = any(c == function or c.startswith(f"{function}[") for c in collected)
        chosen = function if found else test.split("::", 1)[0]
        if chosen not in picked:
            picked.append(chosen)
    return picked


def selection_error(stderr: str, selection: list[str], collected: frozenset[str] | None) -> str:
    """pytest's own one-line complaint (`not found: tests/x.py::test_y[...]`), never its arguments."""
    for line in stderr.splitlines():
        if line.strip().startswith("ERROR:"):
            return _first_line(line.strip().removeprefix("ERROR:").strip())
    unknown = [t for t in selection if collected is not None and "::" in t and t not in collected]
    return f"not found: {unknown[0]}" if unknown else "pytest rejected its arguments"


def _first_line(text: str, limit: int = 300) -> str:
    lines = text.strip().splitlines()
    return lines[0][:limit] if lines else ""


def _limit_address_space(memory_mb: int) -> None:
    """Let a worker map `memory_mb` more than the fork server had, so a runaway mutant fails fast."""
    if memory_mb <= 0:
        return
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * resource.getpagesize()
    limit = mapped + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _driver_run(spec: dict[str, Any]) -> dict[str, Any]:
    from mutmut.mutation.trampoline import set_mutant_under_test
    from mutmut.utils.file_utils import setup_source_paths
    from mutmut.workers.isolation import ForkServerCrashError, ForkServerRunner

    results_dir = Path("mutants") / ".gate-results"
    results_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*results_dir.glob("*.json"), *results_dir.glob("*.widened")]:
        stale.unlink()
    os.environ["PY_IGNORE_IMPORTMISMATCH"] = "1"
    setup_source_paths()
    _import_from_mutants(spec["import_roots"])
    set_mutant_under_test("")
    runner = ForkServerRunner(max_workers=max(1, spec["max_workers"]),
                              test_runner_class=_gate_runner_class(results_dir, spec["memory_mb"]),
                              test_runner_args={}, max_restarts=3)
    runner.startup()  # the fork server imports the code and collects the tests while the gate decides
    try:
        order = sys.stdin.readline()
        if not order.strip():  # stdin closed without jobs (the gate stopped): nothing to test
            return {"tested": 0, "clean_checks": 0}
        work = json.loads(order)
        jobs = [MutantJob(**{**j, "tests": tuple(j["tests"])}) for j in work["jobs"]]
        run = _RunState(results_dir, jobs)
        check_limit = work["check_cpu_limit"]

        def submit_checks() -> None:
            while run.checks_to_submit:
                name, tests = run.checks_to_submit.pop(0)
                runner.submit(name, list(tests), check_limit, 0.0)

        # The checks go through the same fork server and code path as the mutants: a forced
        # failure must fail the tests (they really run the mutated copy), and every test that
        # kills a mutant must pass on the unmutated copy (a kill by a test that fails anyway is
        # no kill). Outcomes wait for the checks they depend on.
        runner.submit(FORCED_FAIL, list(spec["tests"]), check_limit, 0.0)
        for job in jobs:
            while not runner.has_capacity():
                run.collect(runner.wait_for_result())
                submit_checks()
            runner.submit(job.name, run.ordered_tests(job), job.cpu_limit, job.estimated)
        while runner.pending_count() > 0:
            run.collect(runner.wait_for_result())
            submit_checks()
        runner.signal_work_complete()
    except ForkServerCrashError as exc:
        raise _DriverError(f"mutmut's fork server crashed: {str(exc).splitlines()[0]}") from exc
    except BaseException:
        runner.stop_all_workers()
        raise
    finally:
        runner.shutdown()
    return {"tested": len(jobs), "clean_checks": run.clean_checks}


class _RunState:
    """The driver's bookkeeping while mutants run: the checks, the outcomes held until the checks
    they depend on passed, and which test killed each function's mutants so far."""

    def __init__(self, results_dir: Path, jobs: list[MutantJob]) -> None:
        self.results_dir = results_dir
        self.jobs = {j.name: j for j in jobs}
        self.started: dict[str, float] = {}
        self.killers: dict[str, dict[str, int]] = {}
        self.forced_failure_checked = False
        self.unchecked: list[dict[str, Any]] = []
        """Outcomes that arrived before the forced failure was seen to fail."""
        self.verified: set[tuple[str, ...]] = set()
        self.waiting: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        self.check_names: dict[str, tuple[str, ...]] = {}
        self.checks_to_submit: list[tuple[str, tuple[str, ...]]] = []
        self.clean_checks = 0

    def ordered_tests(self, job: MutantJob) -> list[str]:
        """This mutant's tests: its own last killer, then those that killed its function's other
        mutants in this run, then the gate's order."""
        self.started[job.name] = time.monotonic()
        if "killer-first" in levers_off():
            return list(job.tests)
        kills = self.killers.get(job.group, {})
        return sorted(job.tests, key=lambda t: (t != job.first, -kills.get(t, 0)))  # stable sort

    def collect(self, result: Any) -> None:
        name = result.mutant_name
        if name == FORCED_FAIL:
            self._forced_failure(result.exit_code)
        elif name in self.check_names:
            self._clean_check(name, result.exit_code)
        else:
            self._mutant(name, result.exit_code)

    def _mutant(self, name: str, exit_code: int) -> None:
        job = self.jobs.get(name)
        if job is None:
            raise _DriverError(f"mutmut's runner returned a result for {name}, which it was not sent")
        seconds = time.monotonic() - self.started[name]
        status, killed_by, detail = classify(exit_code, _read_result(self.results_dir, name), seconds,
                                             job.cpu_limit / 2)
        widened = self.results_dir / f"{name}.widened"
        if status is MutantStatus.TIMEOUT and widened.exists():
            # its test ids had changed, so more tests ran than its limit was set for: no verdict
            status, detail = MutantStatus.ERROR, (f"{detail}, running {widened.read_text()} in place of test ids "
                                                  "that changed since the baseline")
        outcome = {"name": name, "status": status.value, "killed_by": killed_by, "seconds": round(seconds, 3),
                   "detail": detail}
        if status is not MutantStatus.KILLED:
            self._release([outcome])
            return
        group = self.killers.setdefault(job.group, {})
        group[killed_by] = group.get(killed_by, 0) + 1
        # the killing test must pass on the unmutated copy; without one to name, all its tests must
        selection = (killed_by,) if killed_by and "::" in killed_by else job.tests
        if selection in self.verified:
            self._release([outcome])
            return
        if selection not in self.waiting:
            self.waiting[selection] = []
            check = f"{CLEAN_RUN}-{len(self.check_names) + 1}"
            self.check_names[check] = selection
            self.checks_to_submit.append((check, selection))
        self.waiting[selection].append(outcome)

    def _clean_check(self, name: str, exit_code: int) -> None:
        selection = self.check_names[name]
        self.clean_checks += 1
        if exit_code != 0:
            failed = _read_result(self.results_dir, name).get("killed_by") or ", ".join(selection)
            raise _DriverError(f"the suite fails on unmutated code under mutmut's trampolines: {failed}",
                               kind="red-baseline")
        self.verified.add(selection)
        self._release(self.waiting.pop(selection))

    def _forced_failure(self, exit_code: int) -> None:
        if exit_code == 0:
            raise _DriverError("a forced failure of every mutated function did not fail the tests: no test calls "
                               "a guarded function, the tests do not import mutmut's mutated copy, or they "
                               "swallow every exception")
        if exit_code != 1:  # pytest's "tests failed"; anything else says nothing about the tests
            raise _DriverError(f"the forced-failure check ended with exit {exit_code} instead of failing tests")
        self.forced_failure_checked = True
        _emit("checked")
        self._release(self.unchecked)
        self.unchecked = []

    def _release(self, outcomes: list[dict[str, Any]]) -> None:
        if not self.forced_failure_checked:
            self.unchecked.extend(outcomes)
            return
        for outcome in outcomes:
            _emit("outcome", **outcome)


def _import_from_mutants(roots: list[str]) -> None:
    """mutmut puts `mutants/`, `mutants/src` and `mutants/source` first on the path; the guarded
    files' own import roots go there too, and the unmutated copies of them leave it, so that the
    tests import the mutated copy whatever the user installed (an editable install's `.pth`)."""
    for root in reversed(roots):
        mutated = (Path("mutants") / root).resolve()
        original = Path(root).resolve()
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != original]
        if str(mutated) in sys.path:
            sys.path.remove(str(mutated))
        sys.path.insert(0, str(mutated))


def _read_result(results_dir: Path, name: str) -> dict[str, Any]:
    try:
        return json.loads((results_dir / f"{name}.json").read_text())
    except (OSError, ValueError):
        return {}


_TIMEOUT_EXIT_CODES = {-signal.SIGXCPU, signal.SIGXCPU, 128 + signal.SIGXCPU}


def classify(exit_code: int, written: dict[str, Any], seconds: float, wall_limit: float
             ) -> tuple[MutantStatus, str | None, str]:
    """mutmut's raw worker exit code (plus the gate's result file) -> a MutantStatus."""
    if not written:  # the worker died before pytest finished
        if exit_code in _TIMEOUT_EXIT_CODES or (exit_code == -signal.SIGKILL and seconds >= wall_limit):
            return MutantStatus.TIMEOUT, None, f"stopped after {seconds:.1f}s (limit {wall_limit:.1f}s)"
        how = (f"killed by {signal.Signals(-exit_code).name}" if exit_code < 0 and -exit_code in
               signal.valid_signals() else f"exited with {exit_code} before pytest finished")
        return MutantStatus.CRASHED, None, f"the worker {how}"
    code = written["exit_code"]
    if code == 0:
        return MutantStatus.SURVIVED, None, ""
    if code == 1:  # a test failed: the only exit that says the tests noticed the mutant
        return MutantStatus.KILLED, written.get("killed_by") or "pytest exit 1", written.get("detail", "")
    # interrupted (collection errors too), an internal error, a usage error (a node id not found),
    # no tests: the run itself failed, and says nothing about the mutant
    what = PYTEST_EXITS.get(code, "an unknown exit code")
    detail = written.get("detail", "")
    return MutantStatus.ERROR, None, f"pytest exit {code} ({what})" + (f": {detail}" if detail else "")


PYTEST_EXITS = {2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests collected"}


class _DriverError(Exception):
    """A failure the driver can name: `kind` is `red-baseline` or `infrastructure`."""

    def __init__(self, message: str, kind: str = "infrastructure") -> None:
        super().__init__(message)
        self.kind = kind


def _driver_main(argv: list[str]) -> int:
    phase, spec_path = argv
    driver_pid = os.getpid()

    def on_term(signum: int, frame: Any) -> None:
        if os.getpid() != driver_pid:  # a forked child of ours must never unwind into the driver
            os._exit(1)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    spec = json.loads(Path(spec_path).read_text())
    try:
        _configure_mutmut(spec)
        result = _driver_generate(spec) if phase == "generate" else _driver_run(spec)
    except KeyboardInterrupt:
        _emit("interrupted")
        return 130
    except _DriverError as exc:
        _emit("error", kind=exc.kind, message=str(exc))
        return 1
    except BaseException as exc:  # report mutmut's own crash in one line, then let it show
        if os.getpid() != driver_pid:
            os._exit(1)
        _emit("error", kind="infrastructure", message=f"mutmut ({phase}) crashed: {type(exc).__name__}: {exc}")
        raise
    _emit("done", result=result)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(_driver_main(sys.argv[1:]))
