"""The last step, in-process: what a run checked, judged by the rules into the `GateResult` every
reporter renders (`gate.steps.judgement.judged`), on hand-built values and on stored real runs
(`tests/gate/golden`)."""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path

from gate.policy import Policy
from gate.ratchet import Entry, Ratchet
from gate.result import GateResult, MutantOutcome, MutantStatus, Region, RegionKind, RegionReport, from_dict
from gate.steps.judgement import About, Checked, judged
from gate.verdict import ExitCode

GOLDEN = Path(__file__).resolve().parent / "golden"
POLICY = Policy(source="defaults")
ABOUT = About(project="/p", guarded_paths=("vault",), shard=None,
              run={"kind": "full run", "commit": "", "started": "2026-01-01 00:00:00 UTC"},
              versions={"gate": "0", "python": "3"})
REGION = Region(file="vault/store.py", start=24, end=27, kind=RegionKind.EXCEPT, function="Store.load",
                label="except OSError", entry_line=25, unit="Store.load", unit_decorators=(), shape="s")
TODAY = datetime.date(2026, 6, 1)


def golden(case: str) -> GateResult:
    return from_dict(json.loads((GOLDEN / case / "gate-result.json").read_text(encoding="utf-8")))


def mutant(number: int, status: MutantStatus, **fields) -> MutantOutcome:
    return MutantOutcome(name=f"vault.store.xǁStoreǁload__mutmut_{number}", file=REGION.file, unit="Store.load",
                         operator="augmented_assignment", origin="mutmut", start=25, end=25,
                         original=f"self.failures += {number}", replacement="self.failures = 1", diff="-+\n",
                         region_id=REGION.id, region_shape=REGION.shape, status=status, **fields)


def checked(*mutants: MutantOutcome, entered: bool = True, **fields) -> Checked:
    report = RegionReport(region=REGION, entered=entered, tests=("t::a",) if entered else (), missing_branches=(),
                          entering=("t::a",) if entered else ())
    return Checked(regions=(report,), mutants=mutants, suite_tests=("t::a", "t::b"), mutmut_total=3, gate_total=2,
                   **fields)


def ratchet(*entries: Entry) -> Ratchet:
    return Ratchet(file="gate-adopted.json", entries={e.fingerprint: e for e in entries}, today=TODAY)


def entry(fingerprint: str, expires: str = "2026-12-31") -> Entry:
    return Entry(fingerprint=fingerprint, kind="mutant", file=REGION.file, function="Store.load",
                 what="survived: ...", reason="adopted with it", expires=expires)


def test_a_checked_run_becomes_its_result_with_every_field_carried():
    done = checked(mutant(1, MutantStatus.KILLED, killed_by="t::a"), notes=("a note",), sources={"f": "src"},
                   equivalent={"same": 2})
    result = judged(done, POLICY, ABOUT, {"total": 1.5})
    assert result.verdict.passed and result.verdict.findings == ()
    assert (result.project, result.guarded_paths, result.shard, result.run, result.versions) == (
        ABOUT.project, ABOUT.guarded_paths, ABOUT.shard, ABOUT.run, ABOUT.versions)
    assert (result.mutmut_total, result.gate_total, result.suite_tests) == (3, 2, ("t::a", "t::b"))
    assert (result.timings, result.notes, result.sources, result.equivalent) == (
        {"total": 1.5}, ("a note",), {"f": "src"}, {"same": 2})
    assert result.adoption_file is None and result.error is None and result.nothing_to_check is None
    [killed] = result.mutants
    assert killed.failing is None and killed.finding_id == "" and killed.adopted is None


def test_a_survivor_and_an_untested_mutant_fail_the_run_each_with_its_reason():
    result = judged(checked(mutant(1, MutantStatus.SURVIVED), mutant(2, MutantStatus.NO_TESTS)), POLICY, ABOUT, {})
    assert result.verdict.exit_code is ExitCode.GATE_FAILED
    assert [f.message for f in result.verdict.findings] == [
        "survived: vault/store.py:25 Store.load #1 (augmented_assignment)",
        "no test reaches: vault/store.py:25 Store.load #2 (augmented_assignment)"]
    assert [m.failing is not None and m.fails for m in result.mutants] == [True, True]
    assert all(m.finding_id for m in result.mutants)
    assert result.counts.failing == 2 and result.counts.failing_by_region == {REGION.id: 2}


def test_a_region_no_test_entered_is_a_problem_of_its_own():
    result = judged(checked(entered=False), POLICY, ABOUT, {})
    [report] = result.regions
    [problem] = report.problems
    assert (problem.rule, problem.message) == ("uncovered-handler",
                                               "vault/store.py:24 handler never entered (except OSError)")
    assert problem.finding_id and result.verdict.exit_code is ExitCode.GATE_FAILED
    assert result.counts.uncovered == 1


def test_a_timeout_counts_as_the_policy_says():
    timed_out = checked(mutant(1, MutantStatus.TIMEOUT, detail="timed out twice"))
    killed = judged(timed_out, POLICY, ABOUT, {})
    assert killed.verdict.passed and killed.counts.killed_by_timeout == killed.killed_by_timeout == 1
    survived = judged(timed_out, dataclasses.replace(POLICY, timeout_counts_as="survived"), ABOUT, {})
    assert [f.message for f in survived.verdict.findings] == [
        "timed out (counted as survived by policy): vault/store.py:25 Store.load #1"]
    assert survived.counts.killed_by_timeout == 0


def test_a_finding_the_adoption_file_holds_warns_and_an_expired_entry_fails():
    survivor = checked(mutant(1, MutantStatus.SURVIVED))
    fingerprint = judged(survivor, POLICY, ABOUT, {}).mutants[0].finding_id
    held = judged(survivor, POLICY, ABOUT, {}, ratchet(entry(fingerprint)))
    assert held.verdict.passed and held.adoption_file == "gate-adopted.json"
    assert held.mutants[0].adopted == "adopted with it" and not held.mutants[0].fails
    assert held.counts.adopted == held.adopted == 1
    expired = judged(survivor, POLICY, ABOUT, {}, ratchet(entry(fingerprint, expires="2026-05-31")))
    assert [f.message for f in expired.verdict.findings] == [
        "survived: vault/store.py:25 Store.load #1 (augmented_assignment)",
        "adoption entry expired on 2026-05-31 (gate-adopted.json): survived: ..."]


def test_only_a_whole_run_says_an_adoption_entry_is_no_longer_needed():
    stale = ratchet(entry("0" * 32))
    whole = judged(checked(mutant(1, MutantStatus.KILLED)), POLICY, ABOUT, {}, stale)
    assert whole.verdict.passed and [n.split(":")[0] for n in whole.notes] == [
        "adoption entry no longer needed (remove it from gate-adopted.json, or rewrite the file with `python -m "
        "gate adopt`)"]
    part = judged(checked(mutant(1, MutantStatus.KILLED)), POLICY, ABOUT, {}, stale, whole=False)
    assert part.notes == ()


def test_nothing_to_check_is_carried_and_passes():
    result = judged(Checked(nothing_to_check="no error-handling code changed"), POLICY, ABOUT, {})
    assert result.verdict.passed and result.nothing_to_check == "no error-handling code changed"
    assert result.regions == () and result.mutants == ()


def test_judging_a_stored_run_again_gives_its_verdict_findings_and_fingerprints():
    """A real run's regions and mutants, their judgement taken out, judged again: the same result."""
    for case in ("passed", "failed", "shard1"):
        stored = golden(case)
        bare = Checked(regions=tuple(dataclasses.replace(r, problems=()) for r in stored.regions),
                       mutants=tuple(dataclasses.replace(m, failing=None, finding_id="") for m in stored.mutants),
                       suite_tests=stored.suite_tests, mutmut_total=stored.mutmut_total, gate_total=stored.gate_total,
                       notes=stored.notes, sources=stored.sources, equivalent=stored.equivalent)
        about = About(project=stored.project, guarded_paths=stored.guarded_paths, shard=stored.shard, run=stored.run,
                      versions=stored.versions)
        again = judged(bare, POLICY, about, stored.timings, whole=stored.shard is None)
        assert again == stored, case
