"""Real gate runs on the `incremental` fixture, edited between them: which mutants each edit
re-runs (tests/gate/test_incremental.py, tests/gate/test_normalised_keys.py)."""

from __future__ import annotations

from tests.gate.conftest import run_gate

BOOK, TESTS = "ledger/book.py", "tests/test_book.py"


def edit(project, rel, old, new):
    path = project / rel
    text = path.read_text()
    assert old in text, f"{old!r} is not in {rel}"
    path.write_text(text.replace(old, new, 1))


def rerun(project):
    """The names of the mutants the gate tested (not taken from its cache), after a passing run."""
    run = run_gate(project)
    assert run.exit_code == 0, run.stdout + run.stderr
    return {m["name"] for m in run.mutants() if not m["cached"]}, run


def of(mutants, *units):
    return {m["name"] for m in mutants if m["unit"] in units}
