"""`reports/summary.json`: the verdict, exit code, counts, timings and versions, for CI steps."""

from __future__ import annotations

import json

from gate.result import GateResult, MutantStatus, region_coverage

FORMAT_VERSION = 1


def render(result: GateResult) -> str:
    if result.error is not None:
        return _render_stopped(result)
    counts = result.counts
    regions = []
    for report in result.regions:
        regions.append({
            "id": report.region.id, "file": report.region.file, "start": report.region.start,
            "end": report.region.end, "kind": report.region.kind.value, "function": report.region.function,
            "label": report.region.label, "entered": report.entered, "tests": len(report.tests),
            "coverage": region_coverage([report]),
            "not_mutated": report.not_mutated, "unresolved_types": report.unresolved_types,
            "accepted": report.accepted,
            "mutants": _by_value(counts.by_region.get(report.region.id, {})),
        })
    data = {
        "format_version": FORMAT_VERSION,
        "verdict": "passed" if result.verdict.passed else "failed",
        "nothing_to_check": result.nothing_to_check,
        "run": result.run,
        "exit_code": int(result.verdict.exit_code),
        "findings": [{"exit_code": int(f.exit_code), "message": f.message} for f in result.verdict.findings],
        "coverage": region_coverage(result.regions),
        "counts": {"regions": counts.regions, "mutants": counts.mutants, "tests": counts.tests,
                   "tests_in_no_region": counts.tests_in_no_region,
                   "mutmut_generated": result.mutmut_total, "gate_generated": result.gate_total,
                   "selected": counts.selected, "cached": counts.cached, "by_status": _by_value(counts.by_status),
                   # dropped before testing: never shown, never failing (their reasons, counted)
                   "equivalent_dropped": counts.equivalent_dropped,
                   "equivalent_by_reason": dict(sorted(result.equivalent.items())),
                   # kept and tested (unless the policy turns them off), counted apart
                   "message_only": counts.message_only,
                   "message_only_by_status": _by_value(counts.message_only_by_status),
                   # findings the adoption file holds: warned about, not failing
                   "adopted": counts.adopted,
                   # counted killed only because they timed out (twice: the second time alone, with twice the limit)
                   "killed_by_timeout": counts.killed_by_timeout,
                   # each survivor's explanation, by kind, and the verified assertions suggested
                   "explanations": dict(counts.explanations),
                   "suggestions_verified": counts.suggestions_verified},
        "adoption_file": result.adoption_file,
        "by_operator": {op: _by_value(c) for op, c in counts.by_operator.items()},
        "regions": regions,
        "timings": result.timings,
        "versions": result.versions,
        "notes": list(result.notes),
        "shard": list(result.shard) if result.shard else None,
    }
    return json.dumps(data, indent=2) + "\n"


def _by_value(counts: dict[MutantStatus, int]) -> dict[str, int]:
    """Counts by status, keyed by the status's value (as gate-result.json writes it), in their order."""
    return {status.value: n for status, n in counts.items()}


def _render_stopped(result: GateResult) -> str:
    """The summary of a run that stopped early (a bad flag, a red suite, a crash, Ctrl-C): still
    one verdict to read, and nothing a reader could take for counts of this run."""
    return json.dumps({
        "format_version": FORMAT_VERSION, "verdict": "error", "exit_code": int(result.verdict.exit_code),
        "findings": [{"exit_code": int(f.exit_code), "message": f.message} for f in result.verdict.findings],
        "notes": list(result.notes), "versions": result.versions,
        "shard": list(result.shard) if result.shard else None,
    }, indent=2) + "\n"
