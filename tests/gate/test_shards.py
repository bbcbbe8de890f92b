"""Scale-out: three `--shard k/3` runs on three machines (three copies, three caches) and
`python -m gate merge` give the verdict and counts of a single run."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from tests.gate.conftest import copy_fixture, run_gate

WEAKENED = {"tests/test_strong.py": [("    assert runner.released == 2\n", "    assert runner.released in (1, 2)\n")]}


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_three_shards_merged_equal_one_run(tmp_path):
    single = run_gate(copy_fixture("operators", tmp_path / "single", WEAKENED))
    assert single.exit_code == 1, single.stdout + single.stderr

    shard_results, shares = [], []
    for k in (1, 2, 3):
        shard = run_gate(copy_fixture("operators", tmp_path / f"shard{k}", WEAKENED), "--shard", f"{k}/3")
        shard_results.append(shard.project / "reports" / "gate-result.json")
        shares.append({m["name"] for m in shard.mutants() if m["status"] != "not-run"})
    # every mutant is tested by exactly one shard, and the shares are balanced
    assert set.union(*shares) == {m["name"] for m in single.mutants()}
    assert sum(len(s) for s in shares) == len(single.mutants())
    assert max(len(s) for s in shares) - min(len(s) for s in shares) <= len(single.mutants()) // 3

    merged_project = copy_fixture("operators", tmp_path / "merged", WEAKENED)
    done = subprocess.run([sys.executable, "-m", "gate", "merge", *map(str, shard_results),
                           "--project", str(merged_project)], capture_output=True, text=True, timeout=120)
    assert done.returncode == single.exit_code == 1, done.stdout + done.stderr
    merged = json.loads((merged_project / "reports" / "summary.json").read_text())
    alone = single.summary
    assert merged["verdict"] == alone["verdict"] and merged["exit_code"] == alone["exit_code"]
    assert merged["counts"]["by_status"] == alone["counts"]["by_status"]
    assert merged["by_operator"] == alone["by_operator"]
    assert [f["message"] for f in merged["findings"]] == [f["message"] for f in alone["findings"]]
    statuses = json.loads((merged_project / "reports" / "gate-result.json").read_text())["mutants"]
    assert Counter((m["name"], m["status"]) for m in statuses) == Counter(
        (m["name"], m["status"]) for m in single.mutants())


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_merge_refuses_an_incomplete_set_of_shards(tmp_path):
    shard = run_gate(copy_fixture("operators", tmp_path / "shard1"), "--shard", "1/3")
    done = subprocess.run([sys.executable, "-m", "gate", "merge", str(shard.project / "reports/gate-result.json"),
                           "--project", str(shard.project)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "gate: error [config]: merge needs shards 1..3 of 3 exactly once, got 1/3"
