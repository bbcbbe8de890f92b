"""`gate merge`, in-process (`gate.merge`): the stored shards of one real `--shard 1/2`, `2/2` run
(`tests/gate/golden/shard1`, `shard2`) merged into one verdict, and every way a set of results is
refused. The subprocess tests (tests/gate/test_shards.py, test_false_pass*.py) run the same with
real gate runs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from gate.errors import ConfigError, InfrastructureError
from gate.merge import load, merge
from gate.result import ANOTHER_SHARD, GateResult, MutantStatus, stopped_result
from gate.settings import load_settings
from gate.verdict import ExitCode, Finding
from tests.gate.conftest import copy_fixture

GOLDEN = Path(__file__).resolve().parent / "golden"
SHARDS = [GOLDEN / f"shard{k}" / "gate-result.json" for k in (1, 2)]
SURVIVOR = "survived: vault/store.py:25 Store.load #4 (augmented_assignment)"


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    """The settings of a checkout of the project the shards ran on (the merge judges with its policy)."""
    return load_settings(copy_fixture("strong", tmp_path_factory.mktemp("merge")))


@pytest.fixture
def shards() -> list[GateResult]:
    return load(SHARDS)


def with_run(result: GateResult, **run: str) -> GateResult:
    return dataclasses.replace(result, run={**result.run, **run})


def test_the_shards_merge_into_the_verdict_of_one_run(shards, settings):
    merged = merge(shards, settings)
    assert merged.verdict.exit_code is ExitCode.GATE_FAILED
    assert [f.message for f in merged.verdict.findings] == [SURVIVOR]
    # every mutant as the shard that tested it saw it; none left untested
    tested = {m.name: m for shard in shards for m in shard.mutants if m.status is not MutantStatus.NOT_RUN}
    assert [m.name for m in merged.mutants] == [m.name for m in shards[0].mutants]
    assert all(m.status is tested[m.name].status and m.killed_by == tested[m.name].killed_by for m in merged.mutants)
    assert merged.counts.not_run == 0 and merged.counts.by_status == {MutantStatus.KILLED: 32,
                                                                       MutantStatus.SURVIVED: 1}
    # the merged result is the merge checkout's, and no shard's
    assert merged.project == str(settings.root) and merged.shard is None and merged.error is None
    assert merged.run == shards[0].run and merged.regions == shards[0].regions
    assert merged.timings == {"shard 1": shards[0].timings["total"], "shard 2": shards[1].timings["total"],
                              "total": max(s.timings["total"] for s in shards)}


def test_the_order_the_shards_are_given_in_does_not_matter(shards, settings):
    forward, backward = merge(shards, settings), merge(shards[::-1], settings)
    assert forward.verdict == backward.verdict and forward.mutants == backward.mutants


def test_notes_are_merged_once_each_and_sources_from_every_shard(shards, settings):
    first = dataclasses.replace(shards[0], notes=("shared", "first only"), sources={"a.py": "a"})
    second = dataclasses.replace(shards[1], notes=("shared",), sources={"b.py": "b"})
    merged = merge([first, second], settings)
    assert merged.notes[:2] == ("shared", "first only") and merged.notes.count("shared") == 1
    assert merged.sources == {"a.py": "a", "b.py": "b"}


@pytest.mark.parametrize("keep, message", [
    ([0], "merge needs shards 1..2 of 2 exactly once, got 1/2"),
    ([0, 0], "merge needs shards 1..2 of 2 exactly once, got 1/2, 1/2"),
    ([], "merge takes the gate-result.json of every shard of one --shard K/N run"),
])
def test_an_incomplete_set_of_shards_is_refused(shards, settings, keep, message):
    with pytest.raises(ConfigError) as raised:
        merge([shards[i] for i in keep], settings)
    assert str(raised.value) == message


def test_a_result_of_no_shard_is_refused(shards, settings):
    with pytest.raises(ConfigError, match="merge takes the gate-result.json of every shard"):
        merge([shards[0], dataclasses.replace(shards[1], shard=None)], settings)


@pytest.mark.parametrize("part, what", [("tree", "files (commit and uncommitted changes)"),
                                        ("settings", "settings"), ("environment", "environment")])
def test_shards_of_another_tree_settings_or_environment_are_refused_naming_both(shards, settings, part, what):
    other = with_run(shards[1], **{part: "0123456789abcdef"})
    with pytest.raises(ConfigError) as raised:
        merge([shards[0], other], settings)
    assert str(raised.value) == (
        f"the shards ran on different {what}: shard 1/2 at commit outside git, {part} {shards[0].run[part]}; "
        f"shard 2/2 at commit outside git, {part} 0123456789abcdef")


def test_a_shard_that_recorded_no_tree_is_refused(shards, settings):
    first = dataclasses.replace(shards[0], run={k: v for k, v in shards[0].run.items() if k != "tree"})
    with pytest.raises(ConfigError) as raised:
        merge([with_run(shards[1], commit="1a2b3c4"), first], settings)
    assert str(raised.value) == ("the shards ran on different files (commit and uncommitted changes): "
                                 "shard 1/2 at commit outside git, tree not recorded; "
                                 f"shard 2/2 at commit 1a2b3c4, tree {shards[1].run['tree']}")


def test_shards_that_saw_other_mutants_are_an_infrastructure_error(shards, settings):
    fewer = dataclasses.replace(shards[1], mutants=shards[1].mutants[:-1])
    with pytest.raises(InfrastructureError, match=r"did not see the same regions and mutants \(different commits\?\)"):
        merge([shards[0], fewer], settings)


def test_a_mutant_no_shard_tested_is_an_infrastructure_error(shards, settings):
    name = shards[0].mutants[0].name

    def untested(result: GateResult) -> GateResult:
        first = dataclasses.replace(result.mutants[0], status=MutantStatus.NOT_RUN, detail=ANOTHER_SHARD)
        return dataclasses.replace(result, mutants=(first, *result.mutants[1:]))

    with pytest.raises(InfrastructureError) as raised:
        merge([untested(s) for s in shards], settings)
    assert str(raised.value) == f"no shard tested {name}"


def test_stopped_shards_give_each_ones_exit_code_and_reason_and_the_most_serious_decides(shards, settings):
    red = stopped_result("/a", [Finding(ExitCode.RED_SUITE, "[red-suite] the suite fails")], "red-suite",
                         shard=(1, 3), versions={"gate": "0"})
    bad = stopped_result("/b", [Finding(ExitCode.USAGE, "[config] guarded path 'missing' does not exist")], "config",
                         shard=(3, 3))
    ran = dataclasses.replace(shards[0], shard=(2, 3))  # the one with the survivor
    merged = merge([bad, ran, red], settings)
    assert merged.error == "shard-stopped" and merged.verdict.exit_code is ExitCode.USAGE
    assert [f.message for f in merged.verdict.findings] == [
        "shard 1/3 stopped with exit 3: [red-suite] the suite fails",
        "shard 3/3 stopped with exit 2: [config] guarded path 'missing' does not exist"]
    assert merged.notes == ("shard 1/3: exit 3", "shard 2/3: exit 1", "shard 3/3: exit 2")
    assert merged.project == "/b" and merged.versions == {} and merged.shard is None


def test_load_reads_stored_results_and_refuses_what_is_none(tmp_path):
    assert [r.shard for r in load(SHARDS)] == [(1, 2), (2, 2)]
    (tmp_path / "bad.json").write_text("not json")
    old = json.loads(SHARDS[0].read_text())
    (tmp_path / "old.json").write_text(json.dumps({**old, "format_version": 1}))
    for name in ("bad.json", "old.json", "missing.json"):
        with pytest.raises(ConfigError, match=f"{name}: not a gate result"):
            load([tmp_path / name])
