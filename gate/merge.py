"""`python -m gate merge`: the shards of a CI matrix (`--shard k/n`) back into one verdict, one exit
code and one set of reports, as if one machine had run them all."""

from __future__ import annotations

import json
from pathlib import Path

from gate.errors import ConfigError, InfrastructureError
from gate.ratchet import load as load_ratchet
from gate.result import ANOTHER_SHARD, GateResult, MutantStatus, from_dict, stopped_result
from gate.settings import Settings
from gate.steps.judgement import About, Checked, judged
from gate.verdict import Finding


def load(paths: list[Path]) -> list[GateResult]:
    results = []
    for path in paths:
        try:
            results.append(from_dict(json.loads(path.read_text())))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: not a gate result (reports/gate-result.json): {exc}") from exc
    return results


def merge(results: list[GateResult], settings: Settings) -> GateResult:
    shards = sorted(r.shard for r in results if r.shard)
    if not results or len(shards) != len(results):
        raise ConfigError("merge takes the gate-result.json of every shard of one --shard K/N run")
    n = shards[0][1]
    if shards != [(k, n) for k in range(1, n + 1)]:
        raise ConfigError(f"merge needs shards 1..{n} of {n} exactly once, got {', '.join(f'{k}/{m}' for k, m in shards)}")
    stopped = [r for r in results if r.error is not None]
    if stopped:
        return _stopped_shards(results, stopped)
    _one_tree(results)
    first = results[0]
    names = [m.name for m in first.mutants]
    if any([m.name for m in r.mutants] != names or [g.region.id for g in r.regions] !=
           [g.region.id for g in first.regions] for r in results):
        raise InfrastructureError("the shards did not see the same regions and mutants (different commits?)")
    mutants = []
    for index, name in enumerate(names):
        tested = [r.mutants[index] for r in results if r.mutants[index].status is not MutantStatus.NOT_RUN
                  or r.mutants[index].detail != ANOTHER_SHARD]
        if not tested:
            raise InfrastructureError(f"no shard tested {name}")
        mutants.append(tested[0])
    timings = {f"shard {r.shard[0]}": r.timings.get("total", 0.0) for r in results if r.shard}
    timings["total"] = max(timings.values())
    checked = Checked(regions=first.regions, mutants=tuple(mutants), suite_tests=first.suite_tests,
                      mutmut_total=first.mutmut_total, gate_total=first.gate_total, equivalent=first.equivalent,
                      notes=tuple(dict.fromkeys(note for r in results for note in r.notes)),
                      sources={f: text for r in results for f, text in r.sources.items()})
    # the merged result is the merge checkout's (its reports name it), as one machine's run would be
    about = About(project=str(settings.root), guarded_paths=first.guarded_paths, shard=None, run=first.run,
                  versions=first.versions)
    ratchet = load_ratchet(settings.root, settings.adoption_file) if settings.adoption_file else None
    return judged(checked, settings.policy, about, timings, ratchet)


TREE_PARTS = {"tree": "files (commit and uncommitted changes)", "settings": "settings", "environment": "environment"}


def _one_tree(results: list[GateResult]) -> None:
    """Shards merge only when they ran on one tree, with the same settings and environment: a
    shard rerun after a change, merged with the others' results from before it, would pass on
    what no run checked."""
    ordered = sorted(results, key=lambda r: r.shard or (0, 0))
    first = ordered[0]
    for other in ordered[1:]:
        for part, what in TREE_PARTS.items():
            if not first.run.get(part) or first.run.get(part) != other.run.get(part):
                raise ConfigError(f"the shards ran on different {what}: {_described(first, part)}; "
                                  f"{_described(other, part)}")


def _described(result: GateResult, part: str) -> str:
    k, n = result.shard or (0, 0)
    commit = result.run.get("commit") or "outside git"
    return f"shard {k}/{n} at commit {commit}, {part} {result.run.get(part) or 'not recorded'}"


def _stopped_shards(results: list[GateResult], stopped: list[GateResult]) -> GateResult:
    """Shards that an error stopped leave no share to merge: the merged verdict is each one's own
    exit code and reason, and the most serious of them decides."""
    findings = [Finding(f.exit_code, f"shard {r.shard[0]}/{r.shard[1]} stopped with exit "
                                     f"{int(r.verdict.exit_code)}: {f.message}")
                for r in sorted(stopped, key=lambda r: r.shard or (0, 0)) for f in r.verdict.findings]
    notes = tuple(f"shard {r.shard[0]}/{r.shard[1]}: exit {int(r.verdict.exit_code)}"
                  for r in sorted(results, key=lambda r: r.shard or (0, 0)) if r.shard)
    first = stopped[0]
    return stopped_result(first.project, findings, "shard-stopped", versions=first.versions, notes=notes,
                          run=first.run, guarded_paths=first.guarded_paths)
