"""`reports/gate.sarif`: SARIF 2.1.0, one result per mutant that fails the gate (survived, untested,
or a timeout or crash the policy counts against it) and per region the suite never ran, so
code-scanning tools annotate the line.

The gate is the driver and mutmut an extension. Result paths are relative to the project root,
with no absolute base (code-scanning uploads resolve them against the checkout), and each result
carries a `partialFingerprints` entry that does not change while the finding does not (its file,
function, operator and the mutated text, or a region's rule and label and offsets inside it; never
a line number), so an unchanged survivor stays one alert across runs; two alike findings in one
function are told apart by their order (`gate.rules` gives each finding its fingerprint, the key
of an adoption entry too). A finding the adoption file holds carries a suppression with its
reason. Each rule has help text; a mutant rule's comes with the mutant (its operator's
description), so this module needs no operator table of its own. The run's invocation says how it
ended: a run that an error stopped is not `executionSuccessful` and carries its reason as a
notification, so that its empty results are never read as a clean run.

Written as plain data: no maintained Python SARIF writer exists (sarif-om has not changed since
2019), and the tests validate the output against the published SARIF 2.1.0 schema instead."""

from __future__ import annotations

import json
from typing import Any

from gate.result import GateResult, MutantStatus, Suggestion, stamp

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT = "gateFinding/v2"
MUTMUT_URI = "https://github.com/boxed/mutmut"
REGION_RULES = {
    "uncovered-handler": ("An except handler that no test enters",
                          "Add a test that makes the guarded code raise what this handler catches."),
    "uncovered-region": ("A raise, finally body or cleanup function that no test runs",
                         "Add a test that takes this error path."),
    "untaken-branch": ("A branch inside error-handling code that no test takes",
                       "Add a test that takes this branch of the error path."),
    "region-not-mutated": ("Error-handling code that no mutant checks",
                           "Make the code mutable (no decorator mutmut skips, no nested class), or list the "
                           "region in accept_unmutated in mutmut_config.py with the reason."),
    "unresolved-exception-type": ("An except handler whose caught types the gate cannot resolve",
                                  "Catch a class the module names at import time, or list the region in "
                                  "accept_unmutated in mutmut_config.py with the reason."),
}


def render(result: GateResult) -> str:
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for m in result.mutants:
        if not m.failing:
            continue
        rules[m.operator] = _rule(m.operator, f"Error-handling mutant not killed ({m.operator})",
                                  m.operator_description,
                                  f"A test must fail when {m.operator_description}: add the assertion that "
                                  "notices it, or skip the mutant in pre_mutation with the reason.")
        why = m.failing
        if m.detail and m.status is not MutantStatus.NO_TESTS:
            why += f" ({m.detail})"
        missing = f"\nMissing check: {m.missing_check}" if m.missing_check else ""
        if m.suggestion:
            missing += f"\nSuggested check (verified): {m.suggestion.shown()}"
        found = _result(m.operator, f"Error-handling mutant {m.label} {why}. Mutant:\n{m.diff}{missing}",
                        m.file, m.start, m.end, m.finding_id, m.adopted)
        if m.suggestion:
            found["fixes"] = [_fix(m.suggestion)]
        results.append(found)
    for report in result.regions:
        for problem in report.problems:
            short, help_text = REGION_RULES[problem.rule]
            rules[problem.rule] = _rule(problem.rule, short, short, help_text)
            results.append(_result(problem.rule, problem.message, report.region.file, problem.start, problem.end,
                                   problem.finding_id, problem.adopted))
    driver = {"name": "gate", "version": result.versions.get("gate", ""),
              "rules": [rules[rule] for rule in sorted(rules)]}
    run: dict[str, Any] = {"tool": {"driver": driver}, "invocations": [_invocation(result)], "results": results,
                           "properties": {"gateRun": stamp(result.run)}}
    if "mutmut" in result.versions:
        run["tool"]["extensions"] = [{"name": "mutmut", "version": result.versions["mutmut"],
                                      "informationUri": MUTMUT_URI}]
    log = {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=1) + "\n"


def _invocation(result: GateResult) -> dict[str, Any]:
    """How the run ended: a run that an error stopped did not execute successfully, and says why
    (no results of a stopped run is never read as a clean one)."""
    invocation: dict[str, Any] = {"executionSuccessful": result.error is None,
                                  "exitCode": int(result.verdict.exit_code)}
    if result.error is not None:
        invocation["toolExecutionNotifications"] = [{"level": "error", "message": {"text": f.message}}
                                                    for f in result.verdict.findings]
    return invocation


def _fix(suggestion: Suggestion) -> dict[str, Any]:
    """The verified suggestion as a SARIF fix: its lines inserted after the test's statement."""
    return {"description": {"text": f"Add the check {suggestion.test} lacks (verified: it passes on the original "
                                    "and fails on the mutant)"},
            "artifactChanges": [{"artifactLocation": {"uri": suggestion.file}, "replacements": [
                *([{"deletedRegion": {"startLine": suggestion.rewrite_line, "startColumn": 1,
                                      "endLine": suggestion.rewrite_line, "endColumn": len(suggestion.rewrite_from) + 1},
                    "insertedContent": {"text": suggestion.rewrite_to}}] if suggestion.rewrite_line else []),
                {"deletedRegion": {"startLine": suggestion.after_line + 1, "startColumn": 1,
                                   "endLine": suggestion.after_line + 1, "endColumn": 1},
                 "insertedContent": {"text": "".join(line + "\n" for line in suggestion.lines)}}]}]}


def _rule(rule_id: str, short: str, full: str, help_text: str) -> dict[str, Any]:
    return {"id": rule_id, "shortDescription": {"text": short}, "fullDescription": {"text": full},
            "help": {"text": help_text}}


def _result(rule: str, message: str, file: str, start: int, end: int, finding: str,
            adopted: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": rule,
        "level": "error",
        "message": {"text": message},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": file},
            "region": {"startLine": start, "endLine": end},
        }}],
        "partialFingerprints": {FINGERPRINT: finding},
    }
    if adopted:  # held by the adoption file: reported, suppressed with the entry's reason
        result["suppressions"] = [{"kind": "external", "justification": adopted}]
    return result
