"""After the mutant runs, for each survivor: the missing check. Its covering tests run again on
the original and on the mutant (`gate.mutmut_adapter.probe`), recording what a test could have
observed; the first difference, with the test it showed in, is the assertion that test lacks:

    after tests/test_store.py::test_x, Store.handle is None on the original but a Handle on the
    mutant; no assertion in that test reads handle

and, where the value can be written down, a suggested check verified to pass on the original and
fail on the mutant. Where nothing differs in what the probe observes it says what it looked at and
what it did not; where it could not look, `not observed: ...`.

What this costs is bounded: explanations are cached under each survivor's result key (a survivor
whose code and tests did not change is not explained again, adopted ones included); the rest run
in parallel, their tests ordered to show a difference first, within a budget (`explain_seconds`,
by default 0.3 of what a cold run took before this step, so under a quarter of a cold run); what
the budget does not reach says so and is explained on a later run, warm or not. The verdict never
depends on it."""

from __future__ import annotations

import ast
import functools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gate import __version__
from gate.imports import import_roots
from gate.mutmut_adapter.naming import function_of
from gate.mutmut_adapter.naming import MUTANTS_DIR
from gate.process import last_line, run_python, tool_caches
from gate.result import EXPLANATION_KINDS, MutantOutcome, Suggestion
from gate.settings import Settings
from gate.steps.snapshot import test_unit
from gate.suggestions import function_at, function_named
from gate.wire import codec
from gate.wire.probe import FORMAT, ProbeGroup, ProbeResults, ProbeSpec, Status, SurvivorResult, not_reached

OBSERVED = ("the call's outcome; the raised exception's type, message, __cause__, __context__, "
            "__suppress_context__ and traceback; self's, the held objects' and the module's values at the "
            "call's exit and at the test's end; log records; mock calls; and the functions it returned")
NO_DIFFERENCE = (f"no difference seen in what the probe observes ({OBSERVED}); not observed: what it changed "
                 "elsewhere (files, other objects, other threads) or after the test's end")
EXPLANATIONS_FORMAT = 2
"""The explanation cache's format. History: 1, plain JSON stamped `[1, gate version]`; 2, the
`ExplanationsFile` message of the gate's codec."""


@dataclass(frozen=True)
class Explanation:
    text: str
    kind: str
    """One of `gate.result.EXPLANATION_KINDS`."""
    suggestion: Suggestion | None = None
    final: bool = True
    """False when the budget cut it short (not reached, or its suggestion not verified yet):
    never cached, so a later run finishes it."""

    def __post_init__(self) -> None:
        if self.kind not in EXPLANATION_KINDS:
            raise ValueError(f"unknown kind of explanation {self.kind!r}")


@dataclass(frozen=True)
class CachedExplanation:
    key: str
    """The survivor's result key it is valid for."""
    text: str
    kind: str
    suggestion: Suggestion | None


@dataclass(frozen=True)
class ExplanationsFile:
    """The explanation cache on disk (`explanations.json`), valid for the gate version that wrote it."""

    gate_version: str
    cold_seconds: float | None
    entries: dict[str, CachedExplanation]


class ExplanationCache:
    """Explanations by survivor name, each valid while the survivor's result key is the same: the
    gate's own cache, read and written here alone; a missing, damaged or older one is a miss."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, CachedExplanation] = {}
        self.cold_seconds: float | None = None
        """What the last cold run (no mutant result from the cache) took before its explain step:
        a warm run's budget is a share of that, so what a cold run's budget left is explained later."""
        try:
            data = codec.read(ExplanationsFile, path, EXPLANATIONS_FORMAT)
        except codec.WireError:
            return  # a missing or damaged cache only costs explaining again
        if data.gate_version == __version__:
            self.entries, self.cold_seconds = dict(data.entries), data.cold_seconds or None

    def get(self, name: str, key: str) -> Explanation | None:
        entry = self.entries.get(name)
        if entry is None or entry.key != key:
            return None
        return Explanation(entry.text, entry.kind, entry.suggestion)

    def put(self, name: str, key: str, explanation: Explanation) -> None:
        self.entries[name] = CachedExplanation(key=key, text=explanation.text, kind=explanation.kind,
                                               suggestion=explanation.suggestion)

    def save(self) -> None:
        codec.write(self.path, ExplanationsFile(gate_version=__version__, cold_seconds=self.cold_seconds,
                                                entries=dict(sorted(self.entries.items()))), EXPLANATIONS_FORMAT)


DEFAULT_SHARE = 0.3
"""Of what a cold run took before explaining: a little under a third, so that the step, with the
probe's own start and end beyond its budget, stays under a quarter of the whole run."""
BUDGET_FLOOR_SECONDS = 10.0
"""The least default budget: below it, the probe's own start (the imports, the collection) is most of it."""


def budget_seconds(settings: Settings, before: float) -> float:
    """The explain step's budget: `explain_seconds`, or `DEFAULT_SHARE` of `before` (what a cold run
    took before this step: so under a quarter of a cold run), and at least `BUDGET_FLOOR_SECONDS`."""
    if settings.explain_seconds is not None:
        return settings.explain_seconds
    return max(BUDGET_FLOOR_SECONDS, before * DEFAULT_SHARE)


def explain(survivors: Iterable[MutantOutcome], settings: Settings, work: Path, files: list[str],
            keys: Mapping[str, str], killers: Mapping[tuple[str, str], Iterable[str]],
            durations: Mapping[str, float], elapsed: float, cold: bool) -> dict[str, Explanation]:
    """The explanation of each survivor, by mutant name: from the cache where its key is the same,
    else from the probe within the budget (`budget_seconds` of this run's `elapsed` time if it is
    `cold`, else of the last cold run's). `killers` are the tests that killed other mutants of each
    (file, function), `durations` the measurement's test times."""
    survivors = [m for m in survivors if m.tests]
    _parsed.cache_clear()  # the sources of this run's snapshot, read once each
    cache = ExplanationCache(settings.cache_dir / "explanations.json")
    if cold or cache.cold_seconds is None:
        cache.cold_seconds = elapsed
    budget = budget_seconds(settings, max(elapsed, cache.cold_seconds))
    found: dict[str, Explanation] = {}
    todo = []
    for m in survivors:
        cached = cache.get(m.name, keys.get(m.name, ""))
        if cached is not None:
            found[m.name] = cached
        else:
            todo.append(m)
    if todo:
        fresh = _probe(todo, settings, work, files, killers, durations, budget)
        for m in todo:
            found[m.name] = fresh[m.name]
            if fresh[m.name].final and m.name in keys:
                cache.put(m.name, keys[m.name], fresh[m.name])
    cache.save()
    return found


def _probe(survivors: list[MutantOutcome], settings: Settings, work: Path, files: list[str],
           killers: Mapping[tuple[str, str], Iterable[str]], durations: Mapping[str, float],
           budget: float) -> dict[str, Explanation]:
    deadline = time.time() + budget
    spent = f"not explained: the explain budget ({budget:.0f} s) was spent; a later run explains it"
    spec = ProbeSpec(groups=_groups(survivors, work, killers, durations), pytest_args=tuple(settings.pytest_args),
                     import_roots=tuple(import_roots(work, files)), workers=settings.max_workers, deadline=deadline)
    spec_path, out_path = work / MUTANTS_DIR / ".gate-probe-spec.json", work / MUTANTS_DIR / ".gate-probe.json"
    codec.write(spec_path, spec, FORMAT)
    out_path.unlink(missing_ok=True)
    done = run_python(["-P", "-m", "gate.mutmut_adapter.probe", str(spec_path), str(out_path)], cwd=work,
                      env=tool_caches(work / MUTANTS_DIR / ".gate-tools"))
    if done.returncode != 0 or not out_path.exists():
        # the survivors fail the gate all the same: only their explanation is lost, and says why
        if time.time() >= deadline:
            return {m.name: Explanation(spent, "budget", final=False) for m in survivors}
        why = f"not found: the probe of the survivors' tests failed (exit {done.returncode}): {last_line(done.output)}"
        return {m.name: Explanation(why, "failed", final=False) for m in survivors}
    observed = codec.read(ProbeResults, out_path, FORMAT).survivors
    # the probe answers for every survivor of its spec; one it left out would count as not reached
    return {m.name: explanation(observed[m.name] if m.name in observed else not_reached(len(m.tests)),
                                lambda t: _test_source(work, t), spent) for m in survivors}


def _groups(survivors: list[MutantOutcome], work: Path, killers: Mapping[tuple[str, str], Iterable[str]],
            durations: Mapping[str, float]) -> tuple[ProbeGroup, ...]:
    """The survivors by function and tests, the groups with the most survivors and the cheapest
    tests first (the most explained per second), each group's tests likeliest to differ first."""
    groups: dict[tuple[str, str, tuple[str, ...]], list[MutantOutcome]] = {}
    for m in survivors:
        module_name, _, short = m.name.rpartition(".")
        groups.setdefault((module_name, function_of(short), tuple(sorted(m.tests))), []).append(m)
    ordered = sorted(groups.values(), key=lambda ms: (-len(ms), sum(durations.get(t, 0.0) for t in ms[0].tests)))
    spec_groups = []
    for members in ordered:
        first = members[0]
        module_name, _, short = first.name.rpartition(".")
        spec_groups.append(ProbeGroup(
            module=module_name, short=short, mutants=tuple(m.name for m in members),
            durations={t: durations.get(t, 0.0) for t in first.tests},
            tests=tuple(order_tests(first.tests, killers.get((first.file, first.unit), ()),
                                    _touched(work / first.file, first.unit), lambda t: _test_source(work, t),
                                    durations))))
    return tuple(spec_groups)


def order_tests(tests: Iterable[str], killers: Iterable[str], touched: set[str],
                source_of: Callable[[str], str | None], durations: Mapping[str, float]) -> list[str]:
    """A survivor's tests, likeliest to show a difference first: those that killed its function's
    other mutants (most kills first), then those whose source names what the function touches,
    then the fastest."""
    kills = Counter(killers)

    def names_touched(test: str) -> bool:
        source = source_of(test)
        return bool(source) and bool(touched & _names(source))

    return sorted(tests, key=lambda t: (-kills[t], not names_touched(t), durations.get(t, 0.0), t))


def explanation(result: SurvivorResult, source_of: Callable[[str], str | None], spent: str) -> Explanation:
    """One survivor's probe result in words."""
    if result.status is Status.BUDGET:
        return Explanation(spent, "budget", final=False)
    if result.status is Status.DIED:
        return Explanation("not observed: its run on the mutant stopped or died under the probe (it is tried again "
                           "on the next run)", "failed", final=False)
    excluded, total = result.excluded, result.tests
    if result.status is Status.NOT_OBSERVED:
        why = result.why
        if why is None and excluded:
            test, reason = next(iter(excluded.items()))
            why = f"{len(excluded)} of {total} tests could not be observed; the first, {test}: {reason}"
        return Explanation(f"not observed: {why or 'no test could be observed'}", "not observed")
    left_out = ""
    if excluded:
        test, reason = next(iter(excluded.items()))
        left_out = f" ({len(excluded)} of {total} tests could not be observed and were left out; the first, {test}: {reason})"
    found = result.found
    if found is None:
        if not result.calls_seen:
            return Explanation("not observed: no call of the function was seen (a classmethod or staticmethod "
                               "called past the probe, or a function it returned before the tests began)",
                               "not observed")
        return Explanation(NO_DIFFERENCE + left_out, "no difference")
    where = found.where
    source = source_of(found.test) if where is None else source_of(f"{where.file}::{where.line}")
    text = f"after {found.test}, {found.first.what}; {_reads(source, found.first.read)}{left_out}"
    return Explanation(text, "named", result.suggestion, final=not result.unfinished)


def _reads(source: str | None, name: str | None) -> str:
    if name is None or source is None:
        return "no assertion in that test checks it"
    if name not in _names(source):
        return f"no assertion in that test reads {name}"
    return f"that test reads {name}, but not this value of it"


def _names(source: str) -> set[str]:
    """Every name, attribute and string a test's code mentions."""
    found = set()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return found
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
    return found


def _touched(path: Path, unit: str) -> set[str]:
    """The attribute names a guarded function's code reads or sets (`self.out_of_memory_count`)."""
    source = _unit_source(path, unit)
    if source is None:
        return set()
    return {n.attr for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Attribute)}


def _test_source(work: Path, nodeid: str) -> str | None:
    """The source of the test function a node id names, as the snapshot holds it; `FILE::LINE`
    names the function whose code starts at that line (where an inherited test was defined)."""
    file, _, line = nodeid.partition("::")
    if line.isdigit():
        parsed = _parsed(work / file)
        found = function_at(parsed[1], int(line)) if parsed else None
        return ast.get_source_segment(parsed[0], found[0]) if parsed and found else None
    file, qualname = test_unit(nodeid)
    return _unit_source(work / file, qualname)


@functools.lru_cache(maxsize=256)
def _parsed(path: Path) -> tuple[str, ast.Module] | None:
    try:
        text = path.read_text()
        return text, ast.parse(text)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None


def _unit_source(path: Path, qualname: str) -> str | None:
    parsed = _parsed(path)
    found = function_named(parsed[1], qualname.split(".")) if parsed else None
    return ast.get_source_segment(parsed[0], found[0]) if parsed and found else None
