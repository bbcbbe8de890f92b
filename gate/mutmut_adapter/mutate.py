"""The generate phase, in the driver process: mutmut's own `create_file_mutants` (its copy to
`mutants/`, its operators, trampolines and per-file cache), with `mutate_file_contents` replaced so
that only mutations inside the error-handling regions are kept, the gate's operators
(`gate.operators`) are added as mutmut `Mutation`s, and a sidecar `<file>.gate.json` records, per
mutant name, its operator, changed lines and diff (`gate.wire.driver.Sidecar`)."""

from __future__ import annotations

import difflib
import hashlib
import importlib.metadata
import re
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gate import __version__, operators
from gate.errors import InfrastructureError
from gate.mutmut_adapter import internals as mutmut
from gate.mutmut_adapter import mutant_kinds
from gate.result import Mutant
from gate.steps.regions import unit_def_lines
from gate.wire import codec
from gate.wire import driver as wire
from gate.wire.driver import GenerateSpec, Sidecar


def run_generation(spec: GenerateSpec) -> wire.Generation:
    """Generate (or keep from mutmut's cache) the in-region mutants of the spec's files."""
    started = time.monotonic()
    _prune_stale_mutants(spec)
    mutmut.replace("mutate_file_contents", _gate_mutate_file_contents(spec))

    mutmut.set_mutant_under_test(mutmut.GENERATION)
    Path(mutmut.MUTANTS_DIR).mkdir(exist_ok=True)
    mutmut.copy_src_dir()
    mutmut.copy_also_copy_files()
    # mutmut's create_mutants forks a Pool per run; one file after another is as fast for the
    # handful of files a gate guards and cannot deadlock on a lock held at fork time.
    for path in mutmut.walk_source_files():
        outcome = mutmut.create_file_mutants(path)
        if outcome.error is not None:
            raise outcome.error

    mutants: list[Mutant] = []
    mutmut_total, gate_total, dropped, equivalent = 0, 0, 0, {}
    for rel in sorted(set(spec.setup.files)):
        sidecar = wire.read_sidecar(rel)
        mutants.extend(sidecar.mutants)
        mutmut_total += sidecar.mutmut_total
        gate_total += sidecar.gate_total
        dropped += sidecar.dropped_invalid
        for why, count in sidecar.equivalent.items():
            equivalent[why] = equivalent.get(why, 0) + count
    return wire.Generation(mutants=tuple(mutants), mutmut_total=mutmut_total, gate_total=gate_total,
                           dropped_invalid=dropped, equivalent=equivalent, seconds=time.monotonic() - started)


def _inputs_digest(spec: GenerateSpec, rel: str) -> str:
    """What the mutants of a file depend on besides its source: its regions, the operators and
    the exception types they see, and the versions of the code that generates them."""
    facts = spec.operators.exceptions
    stable = wire.SidecarInputs(
        regions=spec.regions_of(rel), enabled=spec.operators.enabled,
        exceptions=_sorted_keys(facts[rel]) if rel in facts else None, gate=__version__,
        mutmut=importlib.metadata.version("mutmut"))
    return hashlib.sha256(codec.dumps(stable, wire.SIDECAR_FORMAT).encode()).hexdigest()


def _sorted_keys(value: Any) -> Any:
    """`value` with every mapping's keys in order: one text for equal facts, however they were built."""
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_sorted_keys(v) for v in value]
    return value


def _prune_stale_mutants(spec: GenerateSpec) -> None:
    """Drop mutmut's copies that its mtime check would wrongly reuse: changed content, changed
    regions or operators, or files that no longer exist in the snapshot. mutmut copies the rest
    of the project (tests, conftest.py) over the old copy and never deletes: a file deleted from
    the project is deleted from the copy here, or pytest would still load it."""
    for name in spec.setup.also_copy:
        base = Path(mutmut.MUTANTS_DIR) / name
        if base.is_dir() and Path(name).is_dir():
            for copy in [c for c in base.rglob("*") if c.is_file() and "__pycache__" not in c.parts]:
                if not Path(copy.relative_to(mutmut.MUTANTS_DIR)).exists():
                    copy.unlink()
    for root in spec.setup.source_paths:
        base = Path(mutmut.MUTANTS_DIR) / root
        candidates = [base] if base.is_file() else (base.rglob("*") if base.is_dir() else [])
        for copy in [c for c in candidates if c.is_file()]:
            rel = copy.relative_to(mutmut.MUTANTS_DIR).as_posix()
            if rel.endswith((*mutmut.MUTMUT_SIDE_FILES, wire.SIDECAR_SUFFIX)):
                continue
            original = Path(rel)
            if not original.exists():
                _remove_mutant_copy(rel)
            elif rel.endswith(".py"):
                if not _sidecar_matches(rel, original.read_bytes(), _inputs_digest(spec, rel)):
                    _remove_mutant_copy(rel)
            elif copy.read_bytes() != original.read_bytes():
                copy.unlink()


def _sidecar_matches(rel: str, source: bytes, inputs_digest: str) -> bool:
    """Whether the sidecar beside mutmut's copy of `rel` was made from this source and these inputs.
    A cache: a sidecar that is missing, unreadable or of another format (an older gate's) is a miss."""
    try:
        sidecar = wire.read_sidecar(rel)
    except codec.WireError:
        return False
    return sidecar.inputs_digest == inputs_digest and sidecar.source_sha == hashlib.sha256(source).hexdigest()


def _remove_mutant_copy(rel: str) -> None:
    for suffix in ("", *mutmut.MUTMUT_SIDE_FILES, wire.SIDECAR_SUFFIX):
        (Path(mutmut.MUTANTS_DIR) / f"{rel}{suffix}").unlink(missing_ok=True)


def _gate_mutate_file_contents(spec: GenerateSpec) -> Callable[..., Any]:
    """A replacement for mutmut's `mutate_file_contents` that keeps in-region mutations only and
    adds the gate's operators; it runs once per changed file."""
    mutmut_operators = list(mutmut.mutation_operators)

    def mutate_file_contents(filename: str, code: str, covered_lines: Any = None,
                             coverage_excluded_lines: Any = None) -> Any:
        parsed = _parse(filename, code, covered_lines, coverage_excluded_lines, mutmut_operators)
        rel = Path(filename).as_posix()
        candidates, gate_total = _candidates(parsed, spec, rel)
        accepted, dropped, equivalent = _accept(parsed, candidates)
        mutated_file = mutmut.combine_mutations_to_source(parsed.module, [a.mutation for a in accepted],
                                                          parsed.ignored_classes, parsed.ignored_functions)
        records = _records(accepted, parsed.units, filename, rel)
        if set(records) != set(mutated_file.mutant_names):
            raise InfrastructureError(f"{rel}: mutmut named its mutants differently than the gate expected "
                               f"({len(records)} vs {len(mutated_file.mutant_names)})")
        wire.write_sidecar(rel, Sidecar(
            inputs_digest=_inputs_digest(spec, rel), source_sha=hashlib.sha256(code.encode()).hexdigest(),
            # what a plain `mutmut run` would test in this file: mutations inside trampolined functions
            mutmut_total=sum(1 for m in parsed.mutations if m.contained_by_top_level_function in parsed.units),
            gate_total=gate_total, dropped_invalid=dropped, equivalent=equivalent,
            mutants=tuple(records.values())))
        hashes = mutmut.compute_mutated_function_hashes(code, parsed.module, [a.mutation for a in accepted])
        return replace(mutated_file, hash_by_function_name=hashes)

    return mutate_file_contents


@dataclass
class _Parsed:
    """One file as mutmut parsed and mutated it, with the libcst metadata the gate reads."""

    filename: str
    code: str
    module: Any
    mutations: list[Any]
    ignored_classes: Any
    ignored_functions: Any
    tags: dict[int, str]
    """id of a node one of mutmut's operators made -> the operator's name."""
    wrapper: Any
    positions: Any
    units: dict[Any, tuple[str, str]]


@dataclass
class _Accepted:
    mutation: Any
    operator: str
    origin: str
    record: dict[str, Any]
    """The Mutant's fields from `_describe` (lines, original, replacement, diff, message_only)."""


def _parse(filename: str, code: str, covered_lines: Any, coverage_excluded_lines: Any,
           mutmut_operators: list[Any]) -> _Parsed:
    """mutmut's mutations of the file, each remembering which of its operators made it."""
    from libcst.metadata import MetadataWrapper, PositionProvider

    tags: dict[int, str] = {}
    mutmut.replace("mutation_operators", [(t, _tagged(op, tags)) for t, op in mutmut_operators])
    module, mutations, ignored_classes, ignored_functions = mutmut.create_mutations(
        filename, code, covered_lines, coverage_excluded_lines)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    return _Parsed(filename, code, module, mutations, ignored_classes, ignored_functions, tags, wrapper,
                   positions, _units_of(code, positions))


def _candidates(parsed: _Parsed, spec: GenerateSpec, rel: str) -> tuple[list[tuple[Any, str, str]], int]:
    """mutmut's mutations inside the regions, then the gate's, as (mutation, operator, origin); and
    how many the gate's operators made."""
    regions = [span.row() for span in spec.regions_of(rel)]
    positions = parsed.positions

    def in_region(node: Any) -> bool:
        pos = positions.get(node)
        return pos is not None and any(s <= pos.start.line and pos.end.line <= e for s, e, _kind in regions)

    candidates = [(m, parsed.tags.get(id(m.mutated_node), "mutmut"), "mutmut")
                  for m in parsed.mutations if in_region(m.original_node)]
    gate_found = operators.find_mutations(parsed.wrapper, positions, regions, spec.operators.config(), file=rel,
                                          ignored_lines=_ignored_lines(parsed.filename, parsed.code, parsed.wrapper))
    outer = parsed.wrapper.resolve(mutmut.OuterFunctionProvider)
    candidates += [(mutmut.Mutation(c.original, c.mutated, outer.get(c.original)), c.operator, "gate")
                   for c in gate_found]
    return candidates, len(gate_found)


def _accept(parsed: _Parsed, candidates: list[tuple[Any, str, str]]
            ) -> tuple[list[_Accepted], int, dict[str, int]]:
    """The candidates worth testing, in order; how many did not compile; the equivalent ones by why.
    Left out besides: those outside a trampolined function, no-ops, and repeats of a kept one."""
    from libcst.metadata import ParentNodeProvider

    parents = parsed.wrapper.resolve(ParentNodeProvider)
    units = parsed.units
    seen: set[tuple[str, str]] = set()
    compiled: dict[Any, tuple[Any, set[tuple[Any, ...]]]] = {}
    equivalent: dict[str, int] = {}
    accepted, dropped = [], 0
    printed: dict[Any, list[str]] = {}  # each function's own code, printed once for all its mutants
    for mutation, operator, origin in candidates:
        function = mutation.contained_by_top_level_function
        if function not in units:  # mutmut can only trampoline top-level functions and methods
            continue
        record = _describe(parsed.module, parsed.positions, function, mutation, printed)
        if record is None:  # a no-op: the mutant reads exactly like the original
            continue
        if record.pop("invalid"):
            dropped += 1
            continue
        code_text = record.pop("mutated_code")
        key = (units[function][0], code_text)
        if key in seen:  # the same code as a mutant already kept (mutmut's come first)
            continue
        seen.add(key)
        why = _equivalent(mutation, function, code_text, parsed.module, parents, compiled)
        if why is not None:
            equivalent[why] = equivalent.get(why, 0) + 1
            continue
        record["message_only"] = mutant_kinds.message_only(mutation.original_node, mutation.mutated_node, parents)
        accepted.append(_Accepted(mutation, operator, origin, record))
    return accepted, dropped, equivalent


def _records(accepted: list[_Accepted], units: dict[Any, tuple[str, str]], filename: str, rel: str
             ) -> dict[str, Mutant]:
    """Each accepted mutation as a `Mutant`, by the short name mutmut gives it:
    combine_mutations_to_source numbers each function's mutants 1..n in list order."""
    counters: dict[Any, int] = {}
    records = {}
    for kept in accepted:
        function = kept.mutation.contained_by_top_level_function
        counters[function] = counters.get(function, 0) + 1
        mangled, unit = units[function]
        short = f"{mangled}{mutmut.MUTANT_SUFFIX}{counters[function]}"
        records[short] = Mutant(name=mutmut.get_mutant_name(Path(filename), short), file=rel, unit=unit,
                                operator=kept.operator, origin=kept.origin, **kept.record)
    return records


def _equivalent(mutation: Any, function: Any, code_text: str, module: Any, parents: Any,
                compiled: dict[Any, tuple[Any, set[tuple[Any, ...]]]]) -> str | None:
    """Why the mutant is equivalent (`mutant_kinds`), or None when it changes what the program can
    do. `compiled` keeps each function's code as compiled and its kept mutants'."""
    if mutant_kinds.without_runtime_effect(mutation.original_node, mutation.mutated_node, parents):
        return mutant_kinds.NO_RUNTIME_EFFECT
    if function not in compiled:
        bare = function.with_changes(leading_lines=(), decorators=())
        compiled[function] = (mutant_kinds.bytecode(module.code_for_node(bare)), set())
    original, kept = compiled[function]
    shape = mutant_kinds.bytecode(code_text)
    if shape is None or original is None:
        return None
    if shape == original:
        return mutant_kinds.SAME_AS_ORIGINAL
    if shape in kept:
        return mutant_kinds.SAME_AS_ANOTHER
    kept.add(shape)
    return None


def _tagged(op: Callable[[Any], Any], tags: dict[int, str]) -> Callable[[Any], Iterator[Any]]:
    """Wrap one of mutmut's operators so that each node it makes remembers the operator's name."""
    name = op.__name__.removeprefix("operator_")

    def wrapper(node: Any) -> Iterator[Any]:
        for mutated in op(node):
            tags[id(mutated)] = name
            yield mutated

    return wrapper


def _units_of(code: str, positions: Any) -> dict[Any, tuple[str, str]]:
    """The functions mutmut trampolines, as libcst nodes: node -> (mangled key, `Class.method`).
    Which they are is the regions' answer (`unit_def_lines`): the nodes are found by the line of
    their `def`."""
    import libcst as cst

    names = unit_def_lines(code)
    units: dict[Any, tuple[str, str]] = {}
    for node, position in positions.items():
        if isinstance(node, cst.FunctionDef) and position.start.line in names:
            name = names[position.start.line]
            class_name, _, function = name.rpartition(".")
            units[node] = (mutmut.mangle_function_name(name=function, class_name=class_name or None), name)
    return units


def _ignored_lines(filename: str, code: str, wrapper: Any) -> set[int]:
    """Lines under mutmut's `# pragma: no mutate` (and friends): the gate's operators respect them too."""
    ignored = mutmut.get_ignored_lines(filename, code, wrapper, set())
    return set(ignored.no_mutate_lines) | set(ignored.ignore_node_lines)


def _describe(module: Any, positions: Any, function: Any, mutation: Any,
              printed: dict[Any, list[str]]) -> dict[str, Any] | None:
    """The changed lines, replacement and diff of one mutation, in the original file's coordinates."""
    def_pos = positions[function]
    indent = " " * def_pos.start.column
    bare = function.with_changes(leading_lines=(), decorators=())
    if function not in printed:
        printed[function] = textwrap.indent(module.code_for_node(bare), indent).splitlines()
    before = printed[function]
    mutated_function = mutmut.deep_replace(bare, mutation.original_node, mutation.mutated_node)
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
    def shift(match: re.Match[str]) -> str:
        a, a_len, b, b_len = match.group(1), match.group(2), match.group(3), match.group(4)
        return f"@@ -{int(a) + offset}{a_len or ''} +{int(b) + offset}{b_len or ''} @@"

    return re.sub(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@", shift, diff, flags=re.M)

