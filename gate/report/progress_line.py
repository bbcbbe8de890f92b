"""The live progress of a run on the terminal (stderr): one status line, rewritten in place on a
terminal and printed every tenth when piped."""

from __future__ import annotations

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

    def stage(self, text: str) -> None:
        if not self.quiet:
            self._line(f"gate: {text}")

    def mutant(self, outcome: MutantOutcome, done: int, total: int) -> None:
        self.counts[outcome.status] += 1
        if self.quiet:
            return
        status = "  ".join(f"{SHORT[s]} {self.counts[s]}" for s in COLUMNS if self.counts[s] or s in (
            MutantStatus.KILLED, MutantStatus.SURVIVED))
        line = f"gate: mutants {done}/{total}  {status}"
        if self.tty:
            self.stream.write("\r\033[K" + line + ("\n" if done == total else ""))
            self.stream.flush()
        elif (decile := done * 10 // max(total, 1)) != self.last_decile or outcome.status is MutantStatus.SURVIVED:
            self.last_decile = decile
            self._line(line)

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
