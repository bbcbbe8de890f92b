"""`reports/mutation/mutation.json`: the mutation-testing report schema (version 2), so the
report reads like Stryker's. Only error-handling mutants are in it: the gate makes no others."""

from __future__ import annotations

import json
from collections import defaultdict

from gate.result import GateResult, MutantOutcome, MutantStatus

SCHEMA_STATUS = {
    MutantStatus.KILLED: "Killed",
    MutantStatus.SURVIVED: "Survived",
    MutantStatus.TIMEOUT: "Timeout",
    MutantStatus.CRASHED: "RuntimeError",
    MutantStatus.NO_TESTS: "NoCoverage",
    MutantStatus.SKIPPED: "Ignored",
    MutantStatus.ERROR: "RuntimeError",
    MutantStatus.NOT_RUN: "Pending",
}


def render(result: GateResult) -> str:
    return json.dumps(report(result), indent=1) + "\n"


def report(result: GateResult) -> dict:
    """The report of `result` as data, with the source its mutants were made from (the viewer's
    page, `mutation_html`, embeds it)."""
    files: dict[str, dict] = {}
    tests_by_file: dict[str, set[str]] = defaultdict(set)
    for test in result.suite_tests:  # every test of the suite: the viewer lists those no mutant ran as not covering
        tests_by_file[_test_file(test)].add(test)
    in_no_region = result.tests_in_no_region or set()
    for m in result.mutants:
        if m.file not in files:
            files[m.file] = {"language": "python", "source": result.sources.get(m.file, ""), "mutants": []}
        files[m.file]["mutants"].append(_mutant(m, files[m.file]["source"].splitlines()))
        for test in (*m.tests, *([m.killed_by] if m.killed_by else [])):
            tests_by_file[_test_file(test)].add(test)
    return {
        "$schema": "https://git.io/mutation-testing-schema",
        "schemaVersion": "2",
        "thresholds": {"high": 100, "low": 100},
        "projectRoot": result.project,
        "files": files,
        "testFiles": {f: {"tests": [{"id": t, "name": _test_name(t, in_no_region)} for t in sorted(tests)]}
                      for f, tests in sorted(tests_by_file.items())},
        "framework": {"name": "gate", "version": result.versions.get("gate", ""),
                      "dependencies": {k: v for k, v in result.versions.items() if k != "gate"}},
        "performance": {"setup": _ms(result.timings.get("snapshot", 0) + result.timings.get("generate", 0)),
                        "initialRun": _ms(result.timings.get("coverage", 0)),
                        "mutation": _ms(result.timings.get("mutants", 0))},
    }


def _mutant(m: MutantOutcome, lines: list[str]) -> dict:
    first = lines[m.start - 1] if 0 < m.start <= len(lines) else ""
    last = lines[m.end - 1] if 0 < m.end <= len(lines) else ""
    indent = first[:len(first) - len(first.lstrip())]
    # the location starts at the code, not its indentation, so the replacement starts there too
    replacement = m.replacement.removeprefix(indent) if m.replacement.startswith(indent) else m.replacement
    entry = {
        "id": m.name,
        "mutatorName": m.operator,
        "replacement": replacement,
        "description": f"{m.origin} operator {m.operator} in {m.unit} (region {m.region_id})",
        "location": {"start": {"line": m.start, "column": len(indent) + 1},
                     "end": {"line": m.end, "column": len(last) + 1}},
        "status": SCHEMA_STATUS[m.status],
        "coveredBy": list(m.tests),
        "testsCompleted": len(m.tests) if m.status is not MutantStatus.NOT_RUN else 0,
        "duration": _ms(m.seconds),
        "static": False,
    }
    if m.killed_by:
        entry["killedBy"] = [m.killed_by]
    reasons = [m.detail] if m.detail else []
    if m.status is MutantStatus.TIMEOUT:
        reasons.insert(0, "counted killed only by timing out: no test is known to notice it" if not m.failing
                       else "counted survived by the policy (timeout_counts_as)")
    if m.missing_check:
        reasons.append(f"missing check: {m.missing_check}")
    if m.suggestion:
        reasons.append(f"suggested check (verified): {m.suggestion.shown()}")
    if m.adopted:
        reasons.append(f"adopted: {m.adopted}")
    if reasons:
        entry["statusReason"] = "; ".join(reasons)
    return entry


def _test_name(nodeid: str, in_no_region: set[str]) -> str:
    """The test's name, marked when it runs no region (known only when every region was measured)."""
    name = nodeid.split("::", 1)[-1]
    return f"{name} (runs no error-handling region)" if nodeid in in_no_region else name


def _test_file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
