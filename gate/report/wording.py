"""The verdict in words, the same on every report a person reads (the terminal, the front page)."""

from __future__ import annotations

from gate.result import GateResult
from gate.verdict import DESCRIPTIONS


def verdict_words(result: GateResult) -> tuple[str, str]:
    """PASSED, FAILED or ERROR (a run an error stopped; `PASSED with N adopted findings` where the
    adoption file holds what failed), and `exit N: what it means` for this run."""
    verdict, counts = result.verdict, result.counts
    word = "ERROR" if result.error is not None else "PASSED" if verdict.passed else "FAILED"
    meaning = (f"nothing to check: {result.nothing_to_check}" if verdict.passed and result.nothing_to_check
               else DESCRIPTIONS[verdict.exit_code])
    if verdict.passed and counts.killed_by_timeout:  # never "every mutant killed" when some only timed out
        meaning = meaning.replace("every error-handling mutant killed",
                                  f"every error-handling mutant killed, {counts.killed_by_timeout} of them only "
                                  "by timing out (twice, the second time alone with twice the limit)")
    if counts.adopted:
        held = f"{counts.adopted} adopted finding{'s' if counts.adopted != 1 else ''}"
        if verdict.passed:
            word, meaning = f"PASSED with {held}", f"nothing failed beyond what {result.adoption_file} holds"
        else:
            meaning += f"; {held} more in {result.adoption_file}"
    return word, f"exit {verdict.exit_code.value}: {meaning}"
