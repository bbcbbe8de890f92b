"""Exit codes and the pure decision that picks one. The only place that knows them."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ExitCode(enum.IntEnum):
    """What `python -m gate` exits with; `DESCRIPTIONS` says what each means."""

    OK = 0
    GATE_FAILED = 1
    USAGE = 2
    RED_SUITE = 3
    INFRASTRUCTURE = 4
    INTERRUPTED = 130


DESCRIPTIONS = {
    ExitCode.OK: "every error-handling mutant killed and every handler entered",
    ExitCode.GATE_FAILED: "a surviving or untested error-handling mutant, a region the suite never runs, "
                          "or a region no mutant checks (unless accepted)",
    ExitCode.USAGE: "usage or configuration error (flag, [tool.gate], mutmut_config.py, unparsable file)",
    ExitCode.RED_SUITE: "the suite fails on unmutated code",
    ExitCode.INFRASTRUCTURE: "infrastructure failure (mutmut crashed or missing, a worker died, a test run "
                             "that ended in a pytest error or with no outcome, a caught type that cannot be "
                             "resolved, the snapshot not what the suite imported, nothing found, another gate "
                             "run holds the cache)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C or SIGTERM); the next run resumes from the cached mutant "
                          "results (a measurement stopped before it completed starts over)",
}

# A red suite makes every mutant result meaningless and an infrastructure failure makes the
# verdict incomplete; only when neither happened do survivors and uncovered handlers decide.
PRIORITY = (
    ExitCode.INTERRUPTED,
    ExitCode.USAGE,
    ExitCode.RED_SUITE,
    ExitCode.INFRASTRUCTURE,
    ExitCode.GATE_FAILED,
    ExitCode.OK,
)


@dataclass(frozen=True)
class Finding:
    """One reason the gate is not green, with the exit code it calls for."""

    exit_code: ExitCode
    message: str


@dataclass(frozen=True)
class Verdict:
    exit_code: ExitCode
    findings: tuple[Finding, ...]

    @property
    def passed(self) -> bool:
        return self.exit_code is ExitCode.OK


def decide(findings: list[Finding] | tuple[Finding, ...]) -> Verdict:
    """The exit code of the most serious finding, or OK when there is none."""
    codes = {f.exit_code for f in findings}
    exit_code = next((code for code in PRIORITY if code in codes), ExitCode.OK)
    return Verdict(exit_code=exit_code, findings=tuple(findings))


def exit_code_help() -> str:
    """The exit codes, one line each, for `--help` and the README."""
    return "\n".join(f"  {code.value:>3}  {DESCRIPTIONS[code]}" for code in ExitCode)
