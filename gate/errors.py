"""The gate's own errors. Each carries the exit code it maps to; only the CLI turns them into one."""

from __future__ import annotations

from gate.verdict import ExitCode


class GateError(Exception):
    """Base of every error the gate reports as a one-line reason and an exit code."""

    slug = "gate-error"
    exit_code = ExitCode.INFRASTRUCTURE


class ConfigError(GateError):
    """A bad flag, a bad `[tool.gate]` value or a broken `mutmut_config.py`."""

    slug = "config"
    exit_code = ExitCode.USAGE


class UsageError(ConfigError):
    """A command line argparse rejects."""

    slug = "usage"


class SourceSyntaxError(ConfigError):
    """A guarded file that does not parse."""

    slug = "syntax"


class RedSuiteError(GateError):
    """The suite fails on unmutated code, so no mutant result could be trusted."""

    slug = "red-suite"
    exit_code = ExitCode.RED_SUITE


class InfrastructureError(GateError):
    """Something the verdict depends on did not run: mutmut crashed, a worker died, nothing was found."""

    slug = "infrastructure"
    exit_code = ExitCode.INFRASTRUCTURE


class LockedError(InfrastructureError):
    """Another gate run holds this repository's cache."""

    slug = "locked"


class Interrupted(GateError):
    """Ctrl-C: the run stopped; what finished is cached for the next run."""

    slug = "interrupted"
    exit_code = ExitCode.INTERRUPTED


class InternalError(InfrastructureError):
    """An error the gate did not foresee (a bug, an odd environment): it still fails closed."""

    slug = "internal"


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI job cancelled or timed out): stopped like Ctrl-C, children and all."""


def as_gate_error(error: BaseException) -> GateError | None:
    """The gate's error for any exception: Ctrl-C is exit 130; an error the gate did not foresee
    still fails closed, exit 4, with its traceback in a file rather than over the verdict. None
    for SystemExit and the like, which are not ours to translate."""
    import os
    import tempfile
    import traceback
    from pathlib import Path

    if isinstance(error, GateError):
        return error
    if isinstance(error, Terminated):
        return Interrupted("stopped by SIGTERM; finished results are cached")
    if isinstance(error, KeyboardInterrupt):
        return Interrupted("interrupted by Ctrl-C; finished results are cached")
    if not isinstance(error, Exception):
        return None
    trace = Path(tempfile.gettempdir()) / f"gate-error-{os.getpid()}.txt"
    try:
        trace.write_text("".join(traceback.format_exception(error)))
        where = f" (traceback in {trace})"
    except OSError:
        where = ""
    return InternalError(f"unexpected {type(error).__name__}: {error}{where}")
