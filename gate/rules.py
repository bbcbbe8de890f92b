"""Every rule of the gate, decided once: which regions and mutants fail it, with what reason and
exit code. `judge` stores the answers in the result (`RegionReport.problems`,
`MutantOutcome.failing`) and returns the verdict; reporters only render them."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable

from gate.policy import Policy
from gate.ratchet import Ratchet
from gate.result import MutantOutcome, MutantStatus, Region, RegionProblem, RegionReport, fingerprint
from gate.verdict import ExitCode, Finding, Verdict, decide

# Why a mutant with that status fails the gate, as every report words it.
FAILING_REASONS = {
    MutantStatus.SURVIVED: "survived: no test failed",
    MutantStatus.NO_TESTS: "no test runs this code",
    MutantStatus.TIMEOUT: "timed out (counted as survived by policy)",
    MutantStatus.CRASHED: "crashed its test run",
    MutantStatus.ERROR: "could not be tested",
}

_NEVER_RAN = {
    "except": "handler never entered",
    "finally": "finally body never run",
    "raise": "raise never executed",
    "cleanup": "cleanup function never called",
}


def judge(reports: Iterable[RegionReport], mutants: Iterable[MutantOutcome], policy: Policy,
          ratchet: Ratchet | None = None, *, whole: bool = True
          ) -> tuple[tuple[RegionReport, ...], tuple[MutantOutcome, ...], Verdict, list[str]]:
    """The regions with their problems and the mutants marked `failing` (with the reason), each
    finding with its fingerprint and, where the adoption file holds it, the entry's reason; the
    verdict all of it calls for; and notes on the adoption file (entries no longer needed: only a
    `whole` run, which saw every finding, can tell)."""
    ids: Counter[str] = Counter()
    held: set[str] = set()

    def identify(base: str) -> str:
        """`base`, told apart from an identical finding earlier in the run (two alike `raise`
        lines in one function) by its occurrence."""
        ids[base] += 1
        return base if ids[base] == 1 else fingerprint(base, str(ids[base]))

    def adopted(finding_id: str) -> str | None:
        entry = ratchet.entries.get(finding_id) if ratchet else None
        if entry is None:
            return None
        held.add(finding_id)
        return None if ratchet is None or entry.expired(ratchet.today) else entry.reason

    judged_reports = []
    for report in reports:
        problems = []
        for problem in region_problems(report):
            finding_id = identify(fingerprint(*problem.identity))
            problems.append(dataclasses.replace(problem, finding_id=finding_id,
                                                adopted=None if problem.infrastructure else adopted(finding_id)))
        judged_reports.append(dataclasses.replace(report, problems=tuple(problems)))
    findings = _region_findings(judged_reports)
    judged = []
    for m in mutants:
        # every mutant takes its number, failing or not, tested here or by another shard: the same
        # finding has the same fingerprint in a shard, in the merged run and in the next run
        finding_id = identify(m.fingerprint)
        finding = _mutant_finding(m, policy)
        if finding is None:
            judged.append(dataclasses.replace(m, failing=None, finding_id="", adopted=None))
            continue
        held_by = adopted(finding_id)
        if finding.exit_code is not ExitCode.GATE_FAILED:  # an infrastructure failure is never held
            held_by = None
        if held_by is None:
            findings.append(finding)
        judged.append(dataclasses.replace(m, failing=FAILING_REASONS[m.status], finding_id=finding_id,
                                          adopted=held_by))
    notes = []
    if ratchet is not None:
        for entry in ratchet.entries.values():
            if entry.fingerprint in held and entry.expired(ratchet.today):
                findings.append(Finding(ExitCode.GATE_FAILED, f"adoption entry expired on {entry.expires} "
                                        f"({ratchet.file}): {entry.what}"))
            elif whole and entry.fingerprint not in held:
                notes.append(f"adoption entry no longer needed (remove it from {ratchet.file}, or rewrite the "
                             f"file with `python -m gate adopt`): {entry.what}")
    return tuple(judged_reports), tuple(judged), decide(findings), notes


def accepted(region: Region, accept: dict[str, str]) -> str | None:
    """The policy's reason for accepting a region that no mutant checks, if it gives one."""
    for key in (f"{region.file}:{region.function}", f"{region.file}:{region.unit}", region.id, region.file):
        if key in accept:
            return accept[key]
    return None


def region_problems(report: RegionReport) -> list[RegionProblem]:
    """Every way `report`'s region fails the gate: never run, a branch never taken, no mutant, its
    caught types not resolved (the last two unless the policy accepts it). The one place that
    decides them."""
    region = report.region
    base = (region.file, region.function, region.label, region.shape)
    problems = []
    if not report.entered:
        rule = "uncovered-handler" if region.kind.value == "except" else "uncovered-region"
        problems.append(RegionProblem(rule, f"{region.id} {_NEVER_RAN[region.kind.value]} ({region.label})",
                                      region.start, region.end, False, (*base, rule)))
    for source, target in report.missing_branches:
        where = "exit" if target < 0 else f"line {target}"
        offsets = (str(source - region.start), "exit" if target < 0 else str(target - region.start))
        problems.append(RegionProblem("untaken-branch",
                                      f"{region.file}:{source} branch to {where} never taken (in {region.label})",
                                      source, source, False, (*base, "untaken-branch", *offsets)))
    if report.not_mutated and not report.accepted:
        problems.append(RegionProblem("region-not-mutated", f"{region.id} region not mutated: {report.not_mutated}",
                                      region.start, region.end, False, (*base, "region-not-mutated")))
    if report.unresolved_types and not report.accepted:
        problems.append(RegionProblem("unresolved-exception-type", report.unresolved_types, region.start,
                                      region.end, True, (*base, "unresolved-exception-type")))
    return problems



def _region_findings(reports: Iterable[RegionReport]) -> list[Finding]:
    """One finding per cause: a module that cannot be imported is named once, not once per handler."""
    findings = [Finding(ExitCode.INFRASTRUCTURE if p.infrastructure else ExitCode.GATE_FAILED, p.message)
                for report in reports for p in report.problems if not p.adopted]
    return list(dict.fromkeys(findings))


def _mutant_finding(m: MutantOutcome, policy: Policy) -> Finding | None:
    crash = policy.crash_counts_as
    if m.status is MutantStatus.SURVIVED:
        return Finding(ExitCode.GATE_FAILED, f"survived: {m.label} ({m.operator})")
    if m.status is MutantStatus.NO_TESTS:
        return Finding(ExitCode.GATE_FAILED, f"no test reaches: {m.label} ({m.operator})")
    if m.status is MutantStatus.TIMEOUT and policy.timeout_counts_as == "survived":
        return Finding(ExitCode.GATE_FAILED, f"timed out (counted as survived by policy): {m.label}")
    if m.status is MutantStatus.CRASHED and crash != "killed":
        code = ExitCode.INFRASTRUCTURE if crash == "error" else ExitCode.GATE_FAILED
        return Finding(code, f"crashed: {m.label}: {m.detail}")
    if m.status is MutantStatus.ERROR:
        return Finding(ExitCode.INFRASTRUCTURE, f"could not test {m.label}: {m.detail}")
    return None
