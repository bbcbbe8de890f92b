"""`reports/gate.sarif`: SARIF 2.1.0, one result per mutant that fails the gate (survived, untested,
or a timeout or crash the policy counts against it) and per region the suite never ran, so
code-scanning tools annotate the line.

Written as plain data: no maintained Python SARIF writer exists (sarif-om has not changed since
2019), and the tests validate the output against the published SARIF 2.1.0 schema instead."""

from __future__ import annotations

import json

from gate import __version__
from gate.operators import OPERATORS
from gate.regions import RegionKind
from gate.result import FAILING_REASONS, GateResult, MutantStatus

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
REGION_RULES = {
    "uncovered-handler": "An except handler that no test enters",
    "uncovered-region": "A raise, finally body or cleanup function that no test runs",
    "untaken-branch": "A branch inside error-handling code that no test takes",
    "region-not-mutated": "Error-handling code that no mutant checks",
    "unresolved-exception-type": "An except handler whose caught types the gate cannot resolve",
}


def render(result: GateResult) -> str:
    rules: dict[str, str] = {}
    results = []
    for m in result.mutants:
        if not m.failing:
            continue
        rules[m.operator] = OPERATORS.get(m.operator, f"mutmut's {m.operator} operator")
        why = FAILING_REASONS[m.status]
        if m.detail and m.status is not MutantStatus.NO_TESTS:
            why += f" ({m.detail})"
        results.append(_result(m.operator, f"Error-handling mutant {m.name} {why}. Mutant:\n{m.diff}",
                               m.file, m.start, m.end))
    for report in result.regions:
        region = report.region
        if not report.entered:
            rule = "uncovered-handler" if region.kind is RegionKind.EXCEPT else "uncovered-region"
            rules[rule] = REGION_RULES[rule]
            results.append(_result(rule, f"{region.label} in {region.function} is never run by the suite",
                                   region.file, region.start, region.end))
        for source, target in report.missing_branches:
            rules["untaken-branch"] = REGION_RULES["untaken-branch"]
            results.append(_result("untaken-branch", f"branch from line {source} to {target} never taken "
                                   f"(in {region.label})", region.file, source, source))
        if report.not_mutated and not report.accepted:
            rules["region-not-mutated"] = REGION_RULES["region-not-mutated"]
            results.append(_result("region-not-mutated", f"region not mutated: {report.not_mutated}",
                                   region.file, region.start, region.end))
        if report.unresolved_types and not report.accepted:
            rules["unresolved-exception-type"] = REGION_RULES["unresolved-exception-type"]
            results.append(_result("unresolved-exception-type", report.unresolved_types,
                                   region.file, region.start, region.end))
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "gate", "version": __version__, "informationUri": "https://github.com/boxed/mutmut",
                "rules": [{"id": rule, "shortDescription": {"text": text}} for rule, text in sorted(rules.items())],
            }},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": result.project.rstrip("/") + "/"}},
            "results": results,
        }],
    }
    return json.dumps(log, indent=1) + "\n"


def _result(rule: str, message: str, file: str, start: int, end: int) -> dict:
    return {
        "ruleId": rule,
        "level": "error",
        "message": {"text": message},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": file, "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": start, "endLine": end},
        }}],
    }
