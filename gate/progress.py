"""What a run tells whoever watches it: the step it is in, and each mutant as it lands
(`gate.report.progress_line.TerminalProgress` prints them; `Silent` tells no one)."""

from __future__ import annotations

from typing import Protocol

from gate.result import MutantOutcome


class Progress(Protocol):
    def stage(self, text: str) -> None: ...
    def mutant(self, outcome: MutantOutcome, done: int, total: int) -> None: ...


class Silent:
    def stage(self, text: str) -> None:
        pass

    def mutant(self, outcome: MutantOutcome, done: int, total: int) -> None:
        pass
