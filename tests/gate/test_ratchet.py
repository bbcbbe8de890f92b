"""Adopting the gate with an adoption file (`gate.ratchet`): `python -m gate adopt` writes today's
findings; a run then fails on anything new only, warns on what the file holds, fails on an entry
past its date, and says when an entry is no longer needed."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys

import pytest

from gate.errors import ConfigError
from gate.ratchet import load
from tests.gate.conftest import run_gate

TESTS = "tests/test_store.py"
# each deletion lets exactly one mutant of vault/store.py survive
COUNT_CHECK = "    assert store.failures == 2\n"  # the failure count: augmented_assignment survives
CLOSE_CHECKS = "    assert handle.closed == 1\n"  # the handle closed: cleanup-call-delete survives
CAUSE_CHECK = "    assert info.value.__cause__ is cause\n"  # the cause chained: raise-drop-cause survives


def weakened(project, *checks: str) -> None:
    path = project / TESTS
    text = path.read_text()
    for check in checks:
        assert check in text
        text = text.replace(check, "")
    path.write_text(text)


def write_adoption_file(project, *args: str, command: str = "adopt") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gate", command, "--project", str(project), "-q", *args],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def adopted(fixture_project):
    """The strong fixture with two checks gone (two survivors), adopted with an adoption file."""
    project = fixture_project("strong", {"pyproject.toml": [('tests = ["tests"]',
                                                             'tests = ["tests"]\nadoption_file = "gate-adopted.json"')]})
    weakened(project, COUNT_CHECK, CLOSE_CHECKS)
    done = write_adoption_file(project, "--reason", "paid off in the Q1 clean-up", "--expires", "2099-01-31")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gate: adoption file written to gate-adopted.json: 2 entries (2 new or renewed, 0 kept, 0 no longer needed" in done.stdout
    return project


@pytest.mark.slow  # gate runs of seconds: .ci/run runs them
def test_the_adoption_file_holds_todays_findings_with_a_reason_and_a_date(adopted):
    entries = json.loads((adopted / "gate-adopted.json").read_text())["entries"]
    assert sorted((e["kind"], e["what"].split(": ", 2)[-1]) for e in entries) == [
        ("mutant", "augmented_assignment in Store.load (vault/store.py): self.failures += 1 -> self.failures = 1"),
        ("mutant", "cleanup-call-delete in Store.close (vault/store.py): self.handle.close() -> pass"),
    ]
    assert {(e["reason"], e["expires"]) for e in entries} == {("paid off in the Q1 clean-up", "2099-01-31")}
    # the fingerprints are SARIF's: a code-scanning alert and its adoption entry are one finding
    sarif = json.loads((adopted / "reports" / "gate.sarif").read_text())["runs"][0]["results"]
    assert {r["partialFingerprints"]["gateFinding/v2"] for r in sarif} == {e["fingerprint"] for e in entries}

    run = run_gate(adopted)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert ("gate PASSED with 2 adopted findings (exit 0: nothing failed beyond what gate-adopted.json holds)"
            in run.stdout)
    assert run.stdout.count("WARN adopted (paid off in the Q1 clean-up): survived: no test failed") == 2
    assert run.summary["counts"]["adopted"] == 2 and run.summary["adoption_file"] == "gate-adopted.json"
    assert all(r["suppressions"] == [{"kind": "external", "justification": "paid off in the Q1 clean-up"}]
               for r in json.loads((adopted / "reports" / "gate.sarif").read_text())["runs"][0]["results"])


@pytest.mark.slow  # gate runs of seconds: .ci/run runs them
def test_a_new_finding_fails_and_is_the_only_one_named(adopted):
    weakened(adopted, CAUSE_CHECK)
    run = run_gate(adopted)
    assert run.exit_code == 1, run.stdout + run.stderr
    failing = [line for line in run.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failing) == 1 and "(raise-drop-cause)" in failing[0]
    assert "; 2 adopted findings more in gate-adopted.json)" in run.stdout


@pytest.mark.slow  # gate runs of seconds: .ci/run runs them
def test_an_expired_entry_fails(adopted):
    path = adopted / "gate-adopted.json"
    data = json.loads(path.read_text())
    yesterday = (datetime.date.today() - datetime.timedelta(days=1)).isoformat()
    data["entries"][0]["expires"] = yesterday
    path.write_text(json.dumps(data))
    run = run_gate(adopted)
    assert run.exit_code == 1, run.stdout + run.stderr
    expired = data["entries"][0]["what"]
    assert f"FAIL [1] adoption entry expired on {yesterday} (gate-adopted.json): {expired}" in run.stdout
    # and the finding it held fails again, named as any new one is
    assert sum(1 for line in run.stdout.splitlines() if line.startswith("FAIL [1] survived:")) == 1


@pytest.mark.slow  # gate runs of seconds: .ci/run runs them
def test_an_entry_whose_mutant_is_now_killed_is_reported_as_removable(adopted):
    # the count checked again: the mutant its entry holds is killed now
    restored = (adopted / TESTS).read_text().replace(
        "    for _ in range(2):\n        with pytest.raises(StoreError):\n            store.load(\"k\")\n",
        "    for _ in range(2):\n        with pytest.raises(StoreError):\n            store.load(\"k\")\n"
        + COUNT_CHECK)
    (adopted / TESTS).write_text(restored)
    run = run_gate(adopted)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert ("note: adoption entry no longer needed (remove it from gate-adopted.json, or rewrite the file with "
            "`python -m gate adopt`): survived: no test failed: augmented_assignment in Store.load") in run.stdout
    assert "gate PASSED with 1 adopted finding (exit 0" in run.stdout
    rewritten = write_adoption_file(adopted)
    assert "1 entries (0 new or renewed, 1 kept, 1 no longer needed and dropped)" in rewritten.stdout


def test_an_adoption_entry_needs_a_reason_and_a_date(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps({"format": 2, "entries": [
        {"fingerprint": "f", "kind": "mutant", "file": "m.py", "function": "f", "what": "w", "reason": " ",
         "expires": "2099-01-01"}]}))
    with pytest.raises(ConfigError, match=r"adoption_file b.json, entry 1: needs a non-empty reason"):
        load(tmp_path, "b.json")
    (tmp_path / "b.json").write_text(json.dumps({"format": 2, "entries": [
        {"fingerprint": "f", "kind": "mutant", "file": "m.py", "function": "f", "what": "w", "reason": "r",
         "expires": "soon"}]}))
    with pytest.raises(ConfigError, match=r"expires must be a date \(YYYY-MM-DD\), got 'soon'"):
        load(tmp_path, "b.json")


def test_an_adoption_file_of_an_older_format_must_be_rewritten(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps({"format": 1, "entries": []}))
    with pytest.raises(ConfigError, match=r"older gate \(format 1\).*rewrite it with `python -m gate adopt`"):
        load(tmp_path, "b.json")


def test_a_missing_adoption_file_is_a_config_error_naming_the_command(fixture_project):
    project = fixture_project("strong", {"pyproject.toml": [('tests = ["tests"]',
                                                             'tests = ["tests"]\nadoption_file = "gone.json"')]})
    run = run_gate(project)
    assert run.exit_code == 2
    assert run.stderr.strip() == ("gate: error [config]: adoption_file gone.json does not exist: write it with "
                                  "`python -m gate adopt`")


def test_the_old_names_still_work_and_say_what_they_are_called_now(fixture_project):
    project = fixture_project("strong", {"pyproject.toml": [('tests = ["tests"]',
                                                             'tests = ["tests"]\nbaseline_file = "gone.json"')]})
    run = run_gate(project)
    assert run.exit_code == 2
    assert run.stderr.strip().splitlines() == [
        "gate: [tool.gate] baseline_file is now adoption_file (the old name still works)",
        "gate: error [config]: adoption_file gone.json does not exist: write it with `python -m gate adopt`"]
    helped = write_adoption_file(project, "--help", command="baseline")
    assert helped.returncode == 0 and "usage: python -m gate adopt" in helped.stdout
    assert helped.stderr.strip() == ("gate: `python -m gate baseline` is now `python -m gate adopt` "
                                     "(the old name still works)")


def _twin(number: int, status: str):
    from gate.result import MutantOutcome, MutantStatus

    return MutantOutcome(name=f"m.x_f__mutmut_{number}", file="m.py", unit="f", operator="swallow", origin="gate",
                         start=3 + 3 * number, end=3 + 3 * number, original="raise", replacement="pass",
                         diff="", region_id=f"m.py:{2 + 3 * number}", status=MutantStatus(status),
                         tests=("t.py::test_f",))


@pytest.mark.parametrize("first", ["killed", "survived", "not-run"])
def test_two_alike_findings_keep_their_own_fingerprints_whatever_the_other_did(first):
    # two `raise` lines in one function swallowed alike: told apart by their order among the
    # function's mutants, tested or not, so a shard, the merged run and the next run agree
    from gate.policy import Policy
    from gate.rules import judge

    _, mutants, _, _ = judge([], [_twin(1, first), _twin(2, "survived")], Policy(source="defaults"))
    alone = judge([], [_twin(1, "survived"), _twin(2, "survived")], Policy(source="defaults"))[1]
    assert mutants[1].finding_id == alone[1].finding_id != alone[0].finding_id
