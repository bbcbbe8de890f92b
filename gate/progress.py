"""What a run tells whoever watches it: the step it is in, how far the measurement is, and each
mutant as it lands (`gate.report.progress_line.TerminalProgress` prints them; `Silent` tells no one)."""

from __future__ import annotations

from typing import Protocol

from gate.result import MutantOutcome


class Progress(Protocol):
    def stage(self, text: str) -> None: ...
    def measurement(self, done: int, total: int, seconds_left: float | None) -> None:
        """`done` of the `total` tests the measurement collected have finished; `seconds_left` is
        what the rest took in the last measurement (None: no last measurement to go by)."""
    def mutant(self, outcome: MutantOutcome, done: int, total: int) -> None: ...
    def end_line(self) -> None:
        """End a status line left open (rewritten in place), before anything else is printed."""


class Silent:
    def stage(self, text: str) -> None:
        pass

    def measurement(self, done: int, total: int, seconds_left: float | None) -> None:
        pass

    def mutant(self, outcome: MutantOutcome, done: int, total: int) -> None:
        pass

    def end_line(self) -> None:
        pass
