"""`python -m gate`: flags -> Settings -> run_gate() -> reports -> exit code. No logic of its own."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

from gate import __version__
from gate.errors import GateError, InfrastructureError, Interrupted
from gate.lock import exclusive
from gate.pipeline import list_regions, run_gate
from gate.report import clear_reports, write_error_summary, write_reports
from gate.report.terminal import TerminalProgress, render
from gate.settings import OPTIONS, Settings, load_settings
from gate.verdict import ExitCode, exit_code_help


def _shard(value: str) -> tuple[int, int]:
    try:
        k, n = (int(part) for part in value.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard wants K/N (like 2/3), got {value!r}") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"--shard K/N needs 1 <= K <= N, got {value!r}")
    return k, n


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors exit 2 with one line, as every config error does
        self.exit(ExitCode.USAGE, f"gate: error [usage]: {message}\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m gate",
        description="Fail the build if any error-handling mutant survives or any error-handling "
                    "region is never run by the suite.",
        epilog="exit codes:\n" + exit_code_help() + "\n\nsettings come from [tool.gate] in pyproject.toml "
               "(flags override them) and the policy from mutmut_config.py.\n"
               "`python -m gate merge SHARD_RESULTS...` combines the shards of a --shard K/N run.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"gate {__version__}")
    p.add_argument("--project", type=Path, default=Path("."), help="the project's root folder (default: .)")
    p.add_argument("--paths", nargs="+", metavar="PATH", help="guarded files or folders (overrides the policy)")
    p.add_argument("--tests", nargs="+", metavar="ARG", help=OPTIONS["tests"].help)
    p.add_argument("--max-workers", type=int, metavar="N", help=OPTIONS["max_workers"].help)
    p.add_argument("--only-coverage", action="store_true", default=None,
                   help="run the suite under coverage and check the regions, without mutants")
    p.add_argument("--list-regions", action="store_true", help="list the error-handling regions and exit")
    p.add_argument("--changed", nargs="?", const="", metavar="REF",
                   help="mutate only regions of functions changed against REF (default: the staged changes)")
    p.add_argument("--shard", type=_shard, metavar="K/N", help="run the K-th of N balanced shares of the mutants")
    p.add_argument("--lock-timeout", type=float, metavar="SECONDS", help=OPTIONS["lock_timeout"].help)
    p.add_argument("--reports-dir", metavar="DIR", help=OPTIONS["reports_dir"].help)
    p.add_argument("--cache-dir", metavar="DIR", help=OPTIONS["cache_dir"].help)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, only the summary")
    return p


def merge_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m gate merge",
                description="Combine the gate-result.json of every shard of a --shard K/N run into one "
                            "verdict, exit code and set of reports.",
                epilog="exit codes:\n" + exit_code_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", type=Path, metavar="GATE_RESULT_JSON")
    p.add_argument("--project", type=Path, default=Path("."), help="the project's root folder (default: .)")
    p.add_argument("--reports-dir", metavar="DIR", help=OPTIONS["reports_dir"].help)
    return p


def merge_main(argv: Sequence[str]) -> int:
    from gate.merge import load, merge

    args = merge_parser().parse_args(argv)
    try:
        settings = load_settings(args.project, {"reports_dir": args.reports_dir})
        result = merge(load(args.results), settings)
        clear_reports(settings.reports_dir)
        write_reports(result, settings)
        sys.stdout.write(render(result))
        return int(result.verdict.exit_code)
    except BaseException as error:
        return _failed(error)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["merge"]:
        return merge_main(argv[1:])
    args = parser().parse_args(argv)
    try:
        settings = load_settings(args.project, {
            "paths": args.paths, "tests": args.tests, "max_workers": args.max_workers,
            "only_coverage": args.only_coverage, "list_regions": args.list_regions or None,
            "changed": args.changed, "shard": args.shard, "lock_timeout": args.lock_timeout,
            "reports_dir": args.reports_dir, "cache_dir": args.cache_dir,
        })
        if settings.list_regions:
            for region in list_regions(settings):
                print(f"{region.id}-{region.end}\t{region.kind.value}\t{region.function}\t{region.label}")
            return ExitCode.OK
        # one run at a time, reports included: a second run never touches the first one's reports
        with exclusive(settings.cache_dir, settings.lock_timeout):
            return _run(settings, quiet=args.quiet)
    except BaseException as error:
        return _failed(error)


def _run(settings: Settings, *, quiet: bool) -> int:
    """Run the gate and write its reports, replacing every report of the last run; a run that
    stops early leaves only its `summary.json`, which a CI step reads like any other."""
    clear_reports(settings.reports_dir)
    try:
        result = run_gate(settings, TerminalProgress(quiet=quiet))
        write_reports(result, settings, sources=settings.cache_dir / "work")
    except BaseException as error:
        gate_error = _as_gate_error(error)
        if gate_error is None:
            raise
        write_error_summary(settings.reports_dir, int(gate_error.exit_code), gate_error.slug, str(gate_error))
        raise gate_error from None
    sys.stdout.write(render(result))
    return int(result.verdict.exit_code)


def _failed(error: BaseException) -> int:
    """Every error ends the same way: one line naming its cause, and its exit code."""
    gate_error = _as_gate_error(error)
    if gate_error is None:
        raise error
    print(f"gate: error [{gate_error.slug}]: {gate_error}", file=sys.stderr)
    return int(gate_error.exit_code)


def _as_gate_error(error: BaseException) -> GateError | None:
    """The gate's error for any exception: Ctrl-C is exit 130; an error the gate did not foresee
    (a bug, an odd environment) still fails closed, exit 4, with its traceback in a file rather
    than over the verdict. None for SystemExit and the like, which are not ours to translate."""
    if isinstance(error, GateError):
        return error
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
    internal = InfrastructureError(f"unexpected {type(error).__name__}: {error}{where}")
    internal.slug = "internal"
    return internal
