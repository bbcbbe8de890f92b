"""`python -m gate`: flags -> Settings -> a run and its reports (`gate.publish`) -> exit code.

Whatever stops a run, it ends in one line naming its cause and its exit code; when the settings
themselves are broken, the flags say where that verdict is recorded."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from gate import __version__, checks
from gate.errors import GateError, Terminated, UsageError, as_gate_error
from gate.report.progress_line import TerminalProgress
from gate.report.terminal import render
from gate.settings import OPTIONS, fallback_folder, find_root, load_settings
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
    commands: tuple[str, ...] = ()
    """The subcommands a misspelt first argument may have meant."""

    def error(self, message: str) -> NoReturn:  # a usage error is a config error: one line, exit 2, a summary
        raise UsageError(message)

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        # argparse's own check, with a "did you mean" for each argument it does not know
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error("unrecognized arguments: " + " ".join(self._hinted(extra) for extra in extras))
        return parsed

    def _hinted(self, extra: str) -> str:
        if extra.startswith("--"):
            known = [o for action in self._actions for o in action.option_strings if o.startswith("--")]
            close = checks.close_match(extra.split("=", 1)[0], known, cutoff=0.75)
        else:
            close = checks.close_match(extra, self.commands, cutoff=0.75)
        return f"{extra} (did you mean {close}?)" if close else extra


_PROJECT_HELP = ("where the project is (default: .); its root is the nearest folder upwards with a "
                 "pyproject.toml holding [tool.gate] or a mutmut_config.py")


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m gate",
        description="Fail the build if any error-handling mutant survives or any error-handling "
                    "region is never run by the suite.",
        epilog="exit codes:\n" + exit_code_help() + "\n\nsettings come from [tool.gate] in pyproject.toml "
               "(flags override them) and the policy from mutmut_config.py.\n"
               "`python -m gate merge SHARD_RESULTS...` combines the shards of a --shard K/N run;\n"
               "`python -m gate adopt` writes today's findings into [tool.gate] adoption_file;\n"
               "`python -m gate suggest [--apply] MUTANT` shows (or writes) a survivor's verified assertion.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.commands = ("merge", "adopt", "suggest")
    p.add_argument("--version", action="version", version=f"gate {__version__}")
    p.add_argument("--project", type=Path, default=Path("."), help=_PROJECT_HELP)
    p.add_argument("--paths", nargs="+", metavar="PATH", help="guarded files or folders (overrides the policy)")
    p.add_argument("--tests", nargs="+", metavar="ARG", help=OPTIONS["tests"].help)
    p.add_argument("--max-workers", type=int, metavar="N", help=OPTIONS["max_workers"].help)
    p.add_argument("--worker-memory-mb", type=int, metavar="MIB", help=OPTIONS["worker_memory_mb"].help)
    p.add_argument("--only-coverage", action="store_true", default=None,
                   help="run the suite under coverage and check the regions, without mutants")
    p.add_argument("--list-regions", action="store_true", help="list the error-handling regions and exit")
    p.add_argument("--changed", nargs="?", const="", metavar="REF",
                   help="mutate only regions of functions changed against REF (default: the staged changes)")
    p.add_argument("--shard", type=_shard, metavar="K/N", help="run the K-th of N balanced shares of the mutants")
    p.add_argument("--lock-timeout", type=float, metavar="SECONDS", help=OPTIONS["lock_timeout"].help)
    p.add_argument("--reports-dir", metavar="DIR", help=OPTIONS["reports_dir"].help)
    p.add_argument("--cache-dir", metavar="DIR", help=OPTIONS["cache_dir"].help)
    p.add_argument("--no-explain", action="store_true", default=None,
                   help="do not explain survivors (no missing check, no suggested assertion)")
    p.add_argument("--explain-seconds", type=float, metavar="SECONDS", help=OPTIONS["explain_seconds"].help)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, only the summary")
    p.add_argument("-v", "--verbose", action="store_true", help="the whole region table, also when the run passes")
    return p


def suggest_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m gate suggest",
                description="Show the verified assertion the last run suggested for a survivor, or with "
                            "--apply write it into the test file (the only command that writes to your tree).",
                epilog="exit codes:\n" + exit_code_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mutant", help="the survivor, as the last run's report names it (`pkg/store.py:12 Store.load #3`, "
                   "`Store.load #3`, or mutmut's own name)")
    p.add_argument("--apply", action="store_true", help="insert the assertion into the test file")
    p.add_argument("--project", type=Path, default=Path("."), help="the project's root folder (default: .)")
    p.add_argument("--reports-dir", metavar="DIR", help=OPTIONS["reports_dir"].help)
    return p


def suggest_main(argv: Sequence[str]) -> int:
    from gate.suggestions import apply, suggestion_for

    try:
        args = suggest_parser().parse_args(argv)
        settings = load_settings(args.project, {"reports_dir": args.reports_dir})
        suggestion = suggestion_for(settings.reports_dir / "gate-result.json", args.mutant)
        if args.apply:
            apply(settings.root, suggestion)
            print(f"gate: {suggestion.file} changed (in {suggestion.test}):")
        else:
            print(f"suggested check (verified) for {args.mutant}: {suggestion.shown()}")
        if suggestion.rewrite_line:
            print(f"  line {suggestion.rewrite_line}: {suggestion.rewrite_from.strip()}"
                  f"  ->  {suggestion.rewrite_to.strip()}")
        print(f"  after line {suggestion.after_line}:")
        for line in suggestion.lines:
            print(f"  + {line}")
        return ExitCode.OK
    except BaseException as error:
        return _failed(error)


def merge_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m gate merge",
                description="Combine the gate-result.json of every shard of a --shard K/N run into one "
                            "verdict, exit code and set of reports.",
                epilog="exit codes:\n" + exit_code_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", type=Path, metavar="GATE_RESULT_JSON")
    p.add_argument("--project", type=Path, default=Path("."), help=_PROJECT_HELP)
    p.add_argument("--reports-dir", metavar="DIR", help=OPTIONS["reports_dir"].help)
    p.add_argument("-v", "--verbose", action="store_true", help="the whole region table, also when the run passes")
    return p


def merge_main(argv: Sequence[str]) -> int:
    from gate.merge import load, merge
    from gate.publish import replace_reports

    early = _early_flags(argv)
    try:
        args = merge_parser().parse_args(argv)
        settings = load_settings(args.project, {"reports_dir": args.reports_dir})
        result = merge(load(args.results), settings)
        replace_reports(result, settings)
        sys.stdout.write(render(result, _terminal_width(), verbose=args.verbose))
        return int(result.verdict.exit_code)
    except BaseException as error:
        return _failed(error, functools.partial(_record_unloaded, early=early, lock=False))


def adopt_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m gate adopt",
                description="Run the whole gate and write every finding it fails on (survivors, regions never "
                            "run, ...) into [tool.gate] adoption_file: later runs warn on those and fail on "
                            "anything new. An entry already in the file keeps its reason and date, unless that "
                            "date has passed.",
                epilog="exit codes:\n" + exit_code_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--project", type=Path, default=Path("."), help=_PROJECT_HELP)
    p.add_argument("--reason", default=None, help="why the new entries are accepted for now "
                                                  "(default: they were there when the project adopted the gate)")
    p.add_argument("--expires", type=_future_date, default=None, metavar="YYYY-MM-DD",
                   help="the last day the new entries hold (default: 90 days from today)")
    p.add_argument("--max-workers", type=int, metavar="N", help=OPTIONS["max_workers"].help)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, only the summary")
    p.add_argument("-v", "--verbose", action="store_true", help="the whole region table, also when the run passes")
    return p


def adopt_main(argv: Sequence[str]) -> int:
    from gate import ratchet
    from gate.errors import ConfigError
    from gate.publish import run_and_publish

    early = _early_flags(argv)
    progress: TerminalProgress | None = None
    try:
        args = adopt_parser().parse_args(argv)
        progress = TerminalProgress(quiet=args.quiet)
        settings = load_settings(args.project, {"max_workers": args.max_workers})
        if not settings.adoption_file:
            raise ConfigError("set adoption_file in [tool.gate] to the file to write (like \"gate-adopted.json\")")
        name = settings.adoption_file
        path = settings.root / name
        previous = ratchet.load(settings.root, settings.adoption_file) if path.exists() else None
        if previous is None:  # the first adoption file: the run has none to hold its findings yet
            settings = dataclasses.replace(settings, adoption_file=None)
        result = run_and_publish(settings, progress)
        sys.stdout.write(render(result, _terminal_width(), verbose=args.verbose))
        if result.verdict.exit_code not in (ExitCode.OK, ExitCode.GATE_FAILED):  # only gaps in the tests
            print(f"gate: adoption file not written: the run ended with exit {int(result.verdict.exit_code)}, which no "
                  "adoption file can hold", file=sys.stderr)
            return int(result.verdict.exit_code)
        kept, new, dropped = ratchet.write(path, ratchet.adoptable_of(result), previous,
                                           args.reason or ratchet.DEFAULT_REASON,
                                           args.expires or ratchet.default_expiry())
        print(f"gate: adoption file written to {name}: {kept + new} entries ({new} new or renewed, "
              f"{kept} kept, {dropped} no longer needed and dropped)")
        return ExitCode.OK
    except BaseException as error:
        if progress is not None:  # the error's line starts a line of its own
            progress.end_line()
        return _failed(error, functools.partial(_record_unloaded, early=early))


def _future_date(value: str) -> str:
    import datetime

    try:
        day = datetime.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--expires wants a date (YYYY-MM-DD), got {value!r}") from None
    if day < datetime.date.today():
        raise argparse.ArgumentTypeError(f"--expires {value} is in the past")
    return day.isoformat()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    if argv[:1] == ["merge"]:
        return merge_main(argv[1:])
    if argv[:1] == ["adopt"]:
        return adopt_main(argv[1:])
    if argv[:1] == ["baseline"]:  # its name before 0.2: still works, and says what it is called now
        print("gate: `python -m gate baseline` is now `python -m gate adopt` (the old name still works)",
              file=sys.stderr)
        return adopt_main(argv[1:])
    if argv[:1] == ["suggest"]:
        return suggest_main(argv[1:])
    early = _early_flags(argv)
    try:
        args = parser().parse_args(argv)
        settings = load_settings(args.project, {
            "paths": args.paths, "tests": args.tests, "max_workers": args.max_workers,
            "worker_memory_mb": args.worker_memory_mb,
            "only_coverage": args.only_coverage, "list_regions": args.list_regions or None,
            "changed": args.changed, "shard": args.shard, "lock_timeout": args.lock_timeout,
            "reports_dir": args.reports_dir, "cache_dir": args.cache_dir,
            "explain": False if args.no_explain else None, "explain_seconds": args.explain_seconds,
        })
    except BaseException as error:  # before the run could start: its verdict is still this error
        # (a listing is no run: it has no verdict to record)
        return _failed(error, None if early.list_regions else functools.partial(_record_unloaded, early=early))
    progress = TerminalProgress(quiet=args.quiet)
    try:
        if settings.list_regions:
            from gate.publish import earlier_reports
            from gate.run import list_regions

            for region in list_regions(settings):
                print(f"{region.id}-{region.end}\t{region.kind.value}\t{region.function}\t{region.label}")
            left = earlier_reports(settings.reports_dir)
            if left:  # a listing checks nothing and writes no report: what is there is not its verdict
                print(f"gate: --list-regions checks nothing and writes no report: {left}", file=sys.stderr)
            return ExitCode.OK
        from gate.publish import run_and_publish

        result = run_and_publish(settings, progress)
        sys.stdout.write(render(result, _terminal_width(), verbose=args.verbose))
        return int(result.verdict.exit_code)
    except BaseException as error:
        progress.end_line()  # the error's line (Ctrl-C's too) starts a line of its own
        return _failed(error)


def _terminal_width() -> int | None:
    """The terminal's width when stdout is one; None for piped output, which stays plain text."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


@dataclass(frozen=True)
class _EarlyFlags:
    """What a run needs to know to report its own failure when its flags or settings are broken."""

    project: Path
    reports_dir: str | None
    cache_dir: str | None
    shard: tuple[int, int] | None
    list_regions: bool
    changed: bool


def _early_flags(argv: Sequence[str]) -> _EarlyFlags:
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--project", type=Path, default=Path("."))
    early.add_argument("--reports-dir")
    early.add_argument("--cache-dir")
    early.add_argument("--shard")
    early.add_argument("--list-regions", action="store_true")
    early.add_argument("--changed", nargs="?", const="")
    try:
        known, _ = early.parse_known_args(argv)
    except SystemExit:  # a flag without its value, say: the defaults will do
        return _EarlyFlags(Path("."), None, None, None, "--list-regions" in argv,
                           any(a == "--changed" or a.startswith("--changed=") for a in argv))
    try:
        shard = _shard(known.shard) if known.shard else None
    except argparse.ArgumentTypeError:
        shard = None
    return _EarlyFlags(known.project, known.reports_dir, known.cache_dir, shard, known.list_regions,
                       known.changed is not None)


def _record_unloaded(error: GateError, *, early: _EarlyFlags, lock: bool = True) -> None:
    """This run's error as its verdict, in the folders the flags or the readable part of the settings name."""
    from gate.publish import record_unloaded

    root = find_root(early.project)[0] if early.project.is_dir() else early.project.resolve()
    flags = {"reports_dir": early.reports_dir, "cache_dir": early.cache_dir}
    record_unloaded(error, root, lambda name: fallback_folder(root, name, flags[name]), early.shard, early.changed,
                    lock=lock)


def _failed(error: BaseException, record: Callable[[GateError], None] | None = None) -> int:
    """Every error ends the same way: one line naming its cause, and its exit code; `record`
    writes it down as the run's verdict first."""
    gate_error = as_gate_error(error)
    if gate_error is None:
        raise error
    if record is not None:
        record(gate_error)
    print(f"gate: error [{gate_error.slug}]: {gate_error}", file=sys.stderr)
    return int(gate_error.exit_code)


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated
