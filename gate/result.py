"""The types of one gate run's result: what the steps fill in and every reporter renders.

Nothing here decides: `gate.rules` says which regions and mutants fail the gate, once, and
stores its answer in these types (`RegionReport.problems`, `MutantOutcome.failing`)."""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gate.verdict import Finding, Verdict


class RegionKind(str, enum.Enum):
    EXCEPT = "except"
    FINALLY = "finally"
    RAISE = "raise"
    CLEANUP = "cleanup"


@dataclass(frozen=True)
class Region:
    file: str
    """Path relative to the project root, with forward slashes."""
    start: int
    end: int
    kind: RegionKind
    function: str
    """Qualified name of the enclosing function (`Class.method`), or `<module>`."""
    label: str
    """What a reader calls it: `except torch.OutOfMemoryError`, `raise InvalidPromptError`, `finally`."""
    entry_line: int
    """The line whose execution means the region ran: a handler's first body statement, say."""
    unit: str | None
    """The top-level function or method of a top-level class it lies in, or None (module or class body)."""
    unit_decorators: tuple[str, ...]
    """Source of that unit's decorators, outermost first."""
    unit_problem: str | None = None
    """Why mutmut does not copy that unit (a class nested in a class, a function defined in an
    `if` block), or None."""
    shape: str = ""
    """What tells it apart from a region alike in its function, whatever its line: its own text
    and its context's (a handler's or a `finally`'s `try` body, the statement a `raise` is in)."""

    @property
    def id(self) -> str:
        return f"{self.file}:{self.start}"

    @property
    def lines(self) -> range:
        return range(self.start, self.end + 1)

    def contains(self, start: int, end: int) -> bool:
        return self.start <= start and end <= self.end


EXPLANATION_KINDS = ("named", "no difference", "not observed", "budget", "failed", "off")
"""What a survivor's explanation can be: the difference named, none seen, not observable, the
explain budget spent before it was reached, the probe failed, or explanations turned off."""


class MutantStatus(str, enum.Enum):
    KILLED = "killed"
    SURVIVED = "survived"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    NO_TESTS = "no-tests"
    """No test executes the mutated lines."""
    SKIPPED = "skipped"
    """The policy's pre_mutation hook skipped it, with a reason."""
    ERROR = "error"
    """The test run itself failed (pytest refused its arguments): an infrastructure problem."""
    NOT_RUN = "not-run"
    """Tested by another `--shard`."""


ANOTHER_SHARD = "tested by another shard"
"""The detail of a mutant this shard left to another (`MutantStatus.NOT_RUN`)."""


@dataclass(frozen=True)
class Mutant:
    """One error-handling mutant, as generated."""

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
    message_only: bool = False
    """It changes only the message of a raised exception (`message_mutants` in the policy)."""

    @property
    def number(self) -> int:
        """Its number among its function's mutants (the `16` of mutmut's `...__mutmut_16`)."""
        found = _MUTANT_NUMBER.search(self.name)
        return int(found[1]) if found else 0

    @property
    def label(self) -> str:
        """Its name as a person reads it, `shardengine/engine.py:367 Engine._recover_from_oom #16`;
        mutmut's own (`name`) is for mutmut and the reports' machine-read fields."""
        return f"{self.file}:{self.start} {self.unit} #{self.number}"


# mutmut's naming (`gate.mutmut_adapter.naming.MUTANT_SUFFIX`, which tests/gate/test_mutant_names.py
# keeps equal to this), read here so that the reporters need nothing of the adapter
_MUTANT_NUMBER = re.compile(r"__mutmut_(\d+)$")
M = TypeVar("M", bound=Mutant)
_READABLE = re.compile(r"^(?:(?P<file>\S+?)(?::\d+)?\s+)?(?P<unit>[\w.<>]+)\s*#(?P<number>\d+)$")


def find_mutant(mutants: Iterable[M], wanted: str) -> M:
    """The mutant `wanted` names: mutmut's name, or the readable one (`label`, with or without its
    file and line: `Engine._recover_from_oom #16`); ValueError, saying why, when none or several."""
    mutants = list(mutants)
    exact = [m for m in mutants if m.name == wanted]
    if exact:
        return exact[0]
    parsed = _READABLE.match(" ".join(wanted.split()))
    if not parsed:
        raise ValueError(f"no mutant {wanted!r}: name one as the report does (like `Store.load #3`, or "
                         "`pkg/store.py:12 Store.load #3`)")
    found = [m for m in mutants if m.unit == parsed["unit"] and m.number == int(parsed["number"])
             and (parsed["file"] is None or m.file == parsed["file"])]
    if len(found) != 1:
        raise ValueError(f"no mutant {wanted!r}" if not found else
                         f"{wanted!r} names {len(found)} mutants: {', '.join(m.label for m in found)}; add its file")
    return found[0]


@dataclass(frozen=True)
class Suggestion:
    test: str
    """The node id of the test it strengthens."""
    file: str
    after_line: int
    """The line (1-based) of the test file it goes after: the end of the statement that made the call."""
    anchor: str
    """That line's text, which must still be there when it is applied."""
    lines: tuple[str, ...]
    """The lines to insert, indented as the statement they follow."""
    rewrite_line: int = 0
    """A line (1-based) changed as well, or 0: a `with self.assertRaises(E):` that gets `as raised`."""
    rewrite_from: str = ""
    rewrite_to: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Suggestion:
        return cls(test=data["test"], file=data["file"], after_line=int(data["after_line"]), anchor=data["anchor"],
                   lines=tuple(data["lines"]), rewrite_line=int(data.get("rewrite_line", 0)),
                   rewrite_from=data.get("rewrite_from", ""), rewrite_to=data.get("rewrite_to", ""))

    def shown(self) -> str:
        """`<line> after tests/...py:<line>`, as every report shows it."""
        added = f"{' / '.join(line.strip() for line in self.lines)} after {self.file}:{self.after_line}"
        if self.rewrite_line:
            return f"{self.rewrite_to.strip()} at {self.file}:{self.rewrite_line}, then {added}"
        return added

    def applied_to(self, text: str) -> str:
        """`text` (the test file) with the suggestion in; ValueError when a line it changes moved."""
        lines = text.splitlines(keepends=True)
        for number, expected in ((self.after_line, self.anchor), (self.rewrite_line, self.rewrite_from)):
            if number and (not 0 < number <= len(lines) or lines[number - 1].rstrip("\r\n") != expected):
                raise ValueError(f"{self.file}:{number} no longer reads {expected.strip()!r}")
        if self.rewrite_line:
            ending = lines[self.rewrite_line - 1][len(self.rewrite_from):]
            lines[self.rewrite_line - 1] = self.rewrite_to + ending
        if not lines[self.after_line - 1].endswith("\n"):
            lines[self.after_line - 1] += "\n"
        return "".join([*lines[:self.after_line], *(line + "\n" for line in self.lines), *lines[self.after_line:]])


@dataclass(frozen=True, kw_only=True)
class MutantOutcome(Mutant):
    """A mutant, where it lies, and what testing it showed."""

    region_id: str
    status: MutantStatus
    region_shape: str = ""
    """Its region's `Region.shape`: part of its fingerprint."""
    tests: tuple[str, ...] = ()
    killed_by: str | None = None
    seconds: float = 0.0
    detail: str = ""
    cached: bool = False
    failing: str | None = None
    """Why it is a finding under the policy, as every report words it (`gate.rules`); None when
    it is not."""
    finding_id: str = ""
    """Its fingerprint when it is a finding (SARIF's `partialFingerprints`, an adoption entry's key)."""
    adopted: str | None = None
    """The adoption entry's reason, when the adoption file holds it: a warning, not a failure."""
    operator_description: str = ""
    """What the operator does (`the handler body becomes pass`), for the reports' help texts."""
    missing_check: str = ""
    """For a survivor: what a test could have seen that it did not check (`gate.steps.explain`)."""
    explained: str = ""
    """For a survivor, what its explanation is: one of `EXPLANATION_KINDS` ('' for none)."""
    suggestion: Suggestion | None = None
    """For a survivor: the assertion its test lacks, verified to pass on the original and fail on it."""

    @property
    def fails(self) -> bool:
        """It fails the gate: a finding the adoption file does not hold."""
        return self.failing is not None and self.adopted is None

    @classmethod
    def of(cls, mutant: Mutant, **fields: Any) -> MutantOutcome:
        return cls(**{f.name: getattr(mutant, f.name) for f in dataclasses.fields(Mutant)}, **fields)

    @property
    def fingerprint(self) -> str:
        """Stable while the finding is: its file, function, operator, the mutated text and its
        region's shape (so that a finding in another region alike never takes its place), not
        its line (SARIF's `partialFingerprints`)."""
        return fingerprint(self.file, self.unit, self.operator, self.original, self.replacement, self.region_shape)


@dataclass(frozen=True)
class RegionProblem:
    """One way a region fails the gate, as the verdict, the terminal and every report word it."""

    rule: str
    """`uncovered-handler`, `uncovered-region`, `untaken-branch`, `region-not-mutated` or
    `unresolved-exception-type` (SARIF's rule id)."""
    message: str
    start: int
    end: int
    infrastructure: bool
    """An infrastructure failure (exit 4), not a gap in the tests (exit 1)."""
    identity: tuple[str, ...]
    """What names it whatever the line numbers: file, function, rule, label, offsets in the region."""
    finding_id: str = ""
    """Its fingerprint (SARIF's `partialFingerprints`, an adoption entry's key)."""
    adopted: str | None = None
    """The adoption entry's reason, when the adoption file holds it: a warning, not a failure."""


def fingerprint(*parts: str) -> str:
    """A hash of `parts` with their whitespace runs collapsed: an edit elsewhere in the file that
    moves a line, or re-indents it, leaves it unchanged."""
    import hashlib

    text = "\0".join(" ".join(part.split()) for part in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class RegionReport:
    region: Region
    entered: bool
    tests: tuple[str, ...]
    missing_branches: tuple[tuple[int, int], ...]
    entering: tuple[str, ...] = ()
    """The tests that entered it: ran its first statement (`tests` also has those that only
    reached an `except` clause to check it)."""
    statements_run: tuple[int, ...] = ()
    """The region's statements that ran (coverage.py's analysis), and those that did not; an
    `except` clause's own line is not one (it runs whenever an exception is checked against it)."""
    statements_missed: tuple[int, ...] = ()
    branches_taken: tuple[tuple[int, int], ...] = ()
    """Branches that start inside the region and that a test took (`missing_branches`: those none took)."""
    not_mutated: str | None = None
    """Why it has no mutants (a decorator, module level, every mutation dropped), if so."""
    unresolved_types: str | None = None
    """Why the exception types it catches could not be resolved (so the type operators made no
    mutant of it), if so."""
    accepted: str | None = None
    """The policy's reason for accepting either, if it does."""
    problems: tuple[RegionProblem, ...] = ()
    """Every way it fails the gate (`gate.rules`), those the adoption file holds marked."""


@dataclass(frozen=True)
class Counts:
    """What the reports count in one result, counted once (`GateResult.counts`). Status counts keep
    the order in which the result's mutants first show each status (the summary's key order); the
    `*_selected` counts are of the mutants this run tested (not `NOT_RUN`). Read-only, like the result."""

    regions: int
    entered: int
    """Regions a test entered (ran the first statement of)."""
    mutants: int
    selected: int
    """Mutants not left to another shard (`NOT_RUN`)."""
    by_status: dict[MutantStatus, int]
    by_operator: dict[str, dict[MutantStatus, int]]
    """Each operator's mutants by status, operators sorted."""
    by_region: dict[str, dict[MutantStatus, int]]
    """Each region id's mutants by status, in the order of the mutants."""
    failing_by_region: dict[str, int]
    """Mutants that fail the gate (`MutantOutcome.fails`), by region id; regions with none left out."""
    held_by_region: dict[str, int]
    """Mutant findings the adoption file holds, by region id; regions with none left out."""
    failing: int
    """Mutants that fail the gate."""
    cached: int
    cached_selected: int
    message_only: int
    message_only_selected: int
    message_only_by_status: dict[MutantStatus, int]
    adopted: int
    """Findings the adoption file holds, mutants' and regions': warned about, not failing."""
    killed_by_timeout: int
    """Mutants counted killed only because they timed out, twice (the policy's
    `timeout_counts_as = "killed"`): no test is known to notice them."""
    equivalent_dropped: int
    explanations: dict[str, int]
    """Survivors' explanations, by kind (`EXPLANATION_KINDS`), in the order of the mutants."""
    suggestions_verified: int
    tests: int
    """Tests of the suite."""
    tests_in_no_region: int | None
    """Tests of the suite that run no region; None for a `--changed` run, which cannot tell."""

    @property
    def uncovered(self) -> int:
        """Regions no test entered."""
        return self.regions - self.entered

    @property
    def killed(self) -> int:
        return self.by_status.get(MutantStatus.KILLED, 0)

    @property
    def survived(self) -> int:
        return self.by_status.get(MutantStatus.SURVIVED, 0)

    @property
    def timeouts(self) -> int:
        return self.by_status.get(MutantStatus.TIMEOUT, 0)

    @property
    def crashed(self) -> int:
        return self.by_status.get(MutantStatus.CRASHED, 0)

    @property
    def no_tests(self) -> int:
        return self.by_status.get(MutantStatus.NO_TESTS, 0)

    @property
    def skipped(self) -> int:
        return self.by_status.get(MutantStatus.SKIPPED, 0)

    @property
    def errors(self) -> int:
        return self.by_status.get(MutantStatus.ERROR, 0)

    @property
    def not_run(self) -> int:
        return self.by_status.get(MutantStatus.NOT_RUN, 0)

    @classmethod
    def of(cls, result: GateResult) -> Counts:
        mutants = result.mutants
        selected = [m for m in mutants if m.status is not MutantStatus.NOT_RUN]
        by_operator: dict[str, Counter[MutantStatus]] = {}
        by_region: dict[str, Counter[MutantStatus]] = {}
        for m in mutants:
            by_operator.setdefault(m.operator, Counter())[m.status] += 1
            by_region.setdefault(m.region_id, Counter())[m.status] += 1
        in_no_region = result.tests_in_no_region
        return cls(
            regions=len(result.regions), entered=sum(1 for r in result.regions if r.entered),
            mutants=len(mutants), selected=len(selected), by_status=dict(Counter(m.status for m in mutants)),
            by_operator={op: dict(c) for op, c in sorted(by_operator.items())},
            by_region={region: dict(c) for region, c in by_region.items()},
            failing_by_region=dict(Counter(m.region_id for m in mutants if m.fails)),
            held_by_region=dict(Counter(m.region_id for m in mutants if m.failing and m.adopted)),
            failing=sum(1 for m in mutants if m.fails),
            cached=sum(1 for m in mutants if m.cached), cached_selected=sum(1 for m in selected if m.cached),
            message_only=sum(1 for m in mutants if m.message_only),
            message_only_selected=sum(1 for m in selected if m.message_only),
            message_only_by_status=dict(Counter(m.status for m in mutants if m.message_only)),
            adopted=(sum(1 for m in mutants if m.failing and m.adopted)
                       + sum(1 for r in result.regions for p in r.problems if p.adopted)),
            killed_by_timeout=sum(1 for m in mutants if m.status is MutantStatus.TIMEOUT and not m.failing),
            equivalent_dropped=sum(result.equivalent.values()),
            explanations=dict(Counter(m.explained for m in mutants if m.explained)),
            suggestions_verified=sum(1 for m in mutants if m.suggestion),
            tests=len(result.suite_tests), tests_in_no_region=None if in_no_region is None else len(in_no_region))

    def in_regions(self, region_ids: Iterable[str]) -> Counter[MutantStatus]:
        """The mutants of these regions, by status (a region id named twice counts twice)."""
        total: Counter[MutantStatus] = Counter()
        for region in region_ids:
            total.update(self.by_region.get(region, {}))
        return total


@dataclass(frozen=True)
class GateResult:
    project: str
    guarded_paths: tuple[str, ...]
    verdict: Verdict
    regions: tuple[RegionReport, ...] = ()
    mutants: tuple[MutantOutcome, ...] = ()
    mutmut_total: int = 0
    """Mutants mutmut's own operators make on the guarded files, in regions or not."""
    gate_total: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    """Things a reader should know that are not failures (types that could not be resolved, say)."""
    shard: tuple[int, int] | None = None
    suite_tests: tuple[str, ...] = ()
    """Every test (node id) of the suite the measurement ran, whether it runs a region or not."""
    nothing_to_check: str | None = None
    """Why this run had nothing to check (a `--changed` run that no error-handling code is in), if so."""
    run: dict[str, str] = field(default_factory=dict)
    """Which run this is (`kind`: full or --changed, `commit`, `started`): every page says it."""
    error: str | None = None
    """The slug of the error that stopped the run before it reached a verdict of its own (its one
    finding says why), or None: such a result still tells CI, and `gate merge`, what happened."""
    sources: dict[str, str] = field(default_factory=dict)
    """The source each mutant was made from, by file, as the snapshot held it."""
    equivalent: dict[str, int] = field(default_factory=dict)
    """Mutants dropped as equivalent, by why (`gate.mutmut_adapter.mutant_kinds`): never shown."""
    adoption_file: str | None = None
    """The adoption file the run was judged with (`gate.ratchet`), if any."""

    @functools.cached_property
    def counts(self) -> Counts:
        """What the reports count, counted once (not part of `to_dict`: gate-result.json holds the
        result itself, not what follows from it)."""
        return Counts.of(self)

    @property
    def adopted(self) -> int:
        """Findings the adoption file holds: warned about, not failing."""
        return self.counts.adopted

    @property
    def killed_by_timeout(self) -> int:
        """Mutants counted killed only because they timed out, twice (`Counts.killed_by_timeout`)."""
        return self.counts.killed_by_timeout

    @property
    def whole_suite(self) -> bool:
        """Whether the run measured the whole suite and every region (not a `--changed` subset)."""
        return not self.run.get("kind", "").startswith("--changed")

    @property
    def tests_in_no_region(self) -> set[str] | None:
        """The suite's tests that run no error-handling region; None for a `--changed` run, which
        measured only its scope's regions and so cannot tell."""
        if not self.whole_suite:
            return None
        return set(self.suite_tests) - {test for report in self.regions for test in report.tests}

    def mutants_in(self, region_id: str) -> list[MutantOutcome]:
        return [m for m in self.mutants if m.region_id == region_id]

    def count(self, status: MutantStatus) -> int:
        return sum(1 for m in self.mutants if m.status is status)


def stamp(run: dict[str, str]) -> str:
    """`full run at commit 1a2b3c4, 2026-11-26 15:00:00 UTC`: which run and commit a page shows."""
    if not run:
        return "run unknown"
    where = f"at commit {run['commit']}" if run.get("commit") else "outside git"
    return f"{run['kind']} {where}, {run['started']}"


def region_coverage(reports: Iterable[RegionReport]) -> dict[str, Any]:
    """The regions' own coverage, what the gate measures: statements run and branches taken inside
    error-handling regions (each line and branch once, however many regions nest around it), as
    counts and percentages (None where there is nothing to count)."""
    run: set[tuple[str, int]] = set()
    missed: set[tuple[str, int]] = set()
    taken: set[tuple[str, int, int]] = set()
    untaken: set[tuple[str, int, int]] = set()
    for report in reports:
        file = report.region.file
        run |= {(file, line) for line in report.statements_run}
        missed |= {(file, line) for line in report.statements_missed}
        taken |= {(file, a, b) for a, b in report.branches_taken}
        untaken |= {(file, a, b) for a, b in report.missing_branches}
    return {"statements": len(run | missed), "statements_run": len(run), "statements_percent": _percent(run, missed),
            "branches": len(taken | untaken), "branches_taken": len(taken), "branches_percent": _percent(taken, untaken)}


def _percent(done: set, not_done: set) -> float | None:
    total = len(done | not_done)
    return round(100 * len(done) / total, 1) if total else None


RESULT_FORMAT = 10
"""9: a held finding is `adopted` and the file `adoption_file` (they were `baselined`, `baseline_file`).
10: a suite that fails on unmutated code stops the run with error `red-suite` (it was `red-baseline`),
and each mutant carries its readable `label` beside mutmut's `name`."""


def to_dict(result: GateResult) -> dict:
    """The whole result as plain data: `reports/gate-result.json`, and what `gate merge` reads."""
    from dataclasses import asdict

    data = asdict(result)
    data["format_version"] = RESULT_FORMAT
    data["verdict"] = {"exit_code": int(result.verdict.exit_code),
                       "findings": [{"exit_code": int(f.exit_code), "message": f.message}
                                    for f in result.verdict.findings]}
    for region in data["regions"]:
        region["region"]["kind"] = region["region"]["kind"].value
    for mutant, outcome in zip(data["mutants"], result.mutants):
        mutant["status"] = mutant["status"].value
        mutant["fingerprint"] = outcome.fingerprint
        mutant["label"] = outcome.label
    return data


def from_dict(data: dict) -> GateResult:
    from gate.verdict import ExitCode, Finding

    if data.get("format_version") != RESULT_FORMAT:
        raise ValueError(f"written by another version of the gate (result format {data.get('format_version')!r}; "
                         f"this gate reads format {RESULT_FORMAT})")
    regions = []
    for r in data["regions"]:
        region = Region(**{**r["region"], "kind": RegionKind(r["region"]["kind"]),
                           "unit_decorators": tuple(r["region"]["unit_decorators"])})
        regions.append(RegionReport(region=region, entered=r["entered"], tests=tuple(r["tests"]),
                                    missing_branches=tuple(tuple(b) for b in r["missing_branches"]),
                                    entering=tuple(r["entering"]), statements_run=tuple(r["statements_run"]),
                                    statements_missed=tuple(r["statements_missed"]),
                                    branches_taken=tuple(tuple(b) for b in r["branches_taken"]),
                                    not_mutated=r["not_mutated"], unresolved_types=r["unresolved_types"],
                                    accepted=r["accepted"],
                                    problems=tuple(RegionProblem(**{**p, "identity": tuple(p["identity"])})
                                                   for p in r["problems"])))
    mutants = [MutantOutcome(**{**{k: v for k, v in m.items() if k not in ("fingerprint", "label")},
                                "status": MutantStatus(m["status"]), "tests": tuple(m["tests"]),
                                "suggestion": Suggestion.from_dict(m["suggestion"]) if m.get("suggestion") else None})
               for m in data["mutants"]]
    verdict = Verdict(ExitCode(data["verdict"]["exit_code"]),
                      tuple(Finding(ExitCode(f["exit_code"]), f["message"]) for f in data["verdict"]["findings"]))
    return GateResult(project=data["project"], guarded_paths=tuple(data["guarded_paths"]), verdict=verdict,
                      regions=tuple(regions), mutants=tuple(mutants), mutmut_total=data["mutmut_total"],
                      gate_total=data["gate_total"], timings=data["timings"], versions=data["versions"],
                      notes=tuple(data["notes"]), shard=tuple(data["shard"]) if data["shard"] else None,
                      suite_tests=tuple(data["suite_tests"]), run=data["run"], nothing_to_check=data["nothing_to_check"],
                      error=data["error"], sources=data["sources"], equivalent=data["equivalent"],
                      adoption_file=data["adoption_file"])


def stopped_result(project: str, findings: list[Finding], error: str, *, shard: tuple[int, int] | None = None,
                   versions: dict[str, str] | None = None, notes: tuple[str, ...] = (),
                   run: dict[str, str] | None = None, guarded_paths: tuple[str, ...] = ()) -> GateResult:
    """The result of a run that an error stopped before its verdict (`error`: its slug): its
    findings say why. The one place such a result is built."""
    from gate.verdict import decide

    return GateResult(project=project, guarded_paths=guarded_paths, verdict=decide(findings), shard=shard,
                      versions=dict(versions or {}), notes=notes, run=dict(run or {}), error=error)
