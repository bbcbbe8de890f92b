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


class RedBaselineError(GateError):
    """The suite fails on unmutated code, so no mutant result could be trusted."""

    slug = "red-baseline"
    exit_code = ExitCode.RED_BASELINE


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
