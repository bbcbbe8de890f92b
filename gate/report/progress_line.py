"""The live progress of a run on the terminal (stderr): one status line (the measurement's tests,
then the mutants), rewritten in place on a terminal and printed every tenth when piped."""

from __future__ import annotations

import math
import sys
from collections import Counter
from typing import TextIO

from gate.report.terminal import COLUMNS, SHORT
from gate.result import MutantOutcome, MutantStatus


class TerminalProgress:
    """One status line, rewritten in place on a terminal and printed every tenth otherwise."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.counts: Counter[MutantStatus] = Counter()
        self.last_decile = -1
        self.measured_decile = -1
        self.open = False
        """Whether a line rewritten in place is still open (the cursor is at its end)."""

    def stage(self, text: str) -> None:
        if not self.quiet:
            self._line(f"gate: {text}")

    def measurement(self, done: int, total: int, seconds_left: float | None) -> None:
        if self.quiet:
            return
        left = f", about {_duration(seconds_left)} left" if seconds_left and done < total else ""
        line = f"gate: measurement {done}/{total} tests{left}"
        if self.tty:
            self._rewrite(line, done >= total)
        elif (decile := done * 10 // max(total, 1)) != self.measured_decile:
            self.measured_decile = decile
            self._line(line)

    def end_line(self) -> None:
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False

    def mutant(self, outcome: MutantOutcome, done: int, total: int) -> None:
        self.counts[outcome.status] += 1
        if self.quiet:
            return
        status = "  ".join(f"{SHORT[s]} {self.counts[s]}" for s in COLUMNS if self.counts[s] or s in (
            MutantStatus.KILLED, MutantStatus.SURVIVED))
        line = f"gate: mutants {done}/{total}  {status}"
        if self.tty:
            self._rewrite(line, done == total)
        elif (decile := done * 10 // max(total, 1)) != self.last_decile or outcome.status is MutantStatus.SURVIVED:
            self.last_decile = decile
            self._line(line)

    def _rewrite(self, line: str, last: bool) -> None:
        self.stream.write("\r\033[K" + line + ("\n" if last else ""))
        self.stream.flush()
        self.open = not last

    def _line(self, text: str) -> None:
        self.end_line()  # never after the text of a line left open
        self.stream.write(text + "\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    """`40 s`, `5 min`, `1 h 10 min`: an estimate, no finer than it can be."""
    if seconds <= 59:
        return f"{max(1, math.ceil(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"
