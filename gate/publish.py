"""A run and its reports, one at a time per repository: the cache's lock is held while the last
run's reports are cleared, the gate runs, and this run's reports are written. Whatever stops a
run, what it leaves in the reports folder is its own verdict (`summary.json`, `gate-result.json`),
which CI reads like any other; no report of the run before outlives it.

The renderers in `gate.report` turn a `GateResult` into text, and `gate.report.registry` names each
report's path; this module decides which folder they go in, and when."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from gate import __version__
from gate.errors import GateError, LockedError, as_gate_error
from gate.files import write_atomic
from gate.lock import exclusive
from gate.progress import Progress
from gate.report.registry import PAGES, VERDICT_FILES, VERDICT_REPORTS, written
from gate.result import GateResult, stopped_result
from gate.run import run_gate
from gate.settings import Settings
from gate.verdict import Finding

# Everything a run writes to the reports folder (a --changed run's pages go to `changed/` in it) is
# in the registry (`VERDICT_FILES`, `PAGES`); anything else there (its README) is the user's.


def run_and_publish(settings: Settings, progress: Progress) -> GateResult:
    """Run the gate under the cache's lock and write its reports; a run that stops early leaves
    only its own verdict files, and its error (as a `GateError`) goes on up."""
    changed = settings.changed is not None
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(exclusive(settings.cache_dir, settings.lock_timeout))
        except LockedError:  # another run's reports are its own
            raise
        except BaseException as error:  # the cache folder cannot hold a lock: still this run's verdict
            raise _recorded(error, settings.root, settings.reports_dir, settings.shard, changed) from None
        clear_reports(settings.reports_dir, changed=changed)
        try:
            result = run_gate(settings, progress)
            write_reports(result, settings.pages_dir, settings.reports_dir)
        except BaseException as error:
            raise _recorded(error, settings.root, settings.reports_dir, settings.shard, changed) from None
    return result


def _recorded(error: BaseException, root: Path, reports_dir: Path, shard: tuple[int, int] | None,
              changed: bool) -> BaseException:
    """`error` as the gate's error, recorded as the run's verdict (`record_stopped`); an exception
    that is not the gate's to translate (SystemExit) comes back as it is."""
    gate_error = as_gate_error(error)
    if gate_error is None:
        return error
    record_stopped(gate_error, root, reports_dir, shard, changed)
    return gate_error


def replace_reports(result: GateResult, settings: Settings) -> None:
    """The last run's reports replaced by `result`'s (what `gate merge` does with the merged result)."""
    clear_reports(settings.reports_dir)
    write_reports(result, settings.pages_dir, settings.reports_dir)


def write_reports(result: GateResult, pages: Path, reports_dir: Path) -> None:
    """Every report of a run: the verdict files in `reports_dir`, the pages in `pages` (coverage.py
    wrote `coverage/` and `coverage.json` there already). Each page says which run and commit it shows."""
    for report in written(result):  # a stopped run's (stopped shards, merged): its verdict files alone
        write_atomic((reports_dir if report.verdict else pages) / report.path, report.render(result))


def clear_reports(reports_dir: Path, changed: bool = False) -> None:
    """Remove the last run's reports, so that none outlives the run that replaces it: the verdict
    files always, and this kind of run's pages (a `--changed` run's are `changed/`; a full run
    replaces every page, the last `--changed` run's too)."""
    pages = [reports_dir / "changed"] if changed else [reports_dir / "changed", *(reports_dir / p for p in PAGES)]
    for path in [*(reports_dir / name for name in VERDICT_FILES), *pages]:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def record_stopped(error: GateError, root: Path, reports_dir: Path, shard: tuple[int, int] | None,
                   changed: bool) -> None:
    """A run that `error` stopped: the last run's verdict files and this kind of run's pages removed
    (none may be read as this run's), then its own `summary.json` and `gate-result.json` (what
    `gate merge` reads from each shard). Never at the cost of the message: the CLI still prints it."""
    result = stopped_result(str(root), [Finding(error.exit_code, f"[{error.slug}] {error}")], error.slug, shard=shard,
                            versions={"gate": __version__, "python": sys.version.split()[0]})
    with contextlib.suppress(OSError):
        clear_reports(reports_dir, changed=changed)
        _write_verdict(result, reports_dir)


def record_unloaded(error: GateError, root: Path, folder: Callable[[str], Path], shard: tuple[int, int] | None,
                    changed: bool, *, lock: bool = True) -> None:
    """`record_stopped` for a run whose settings did not load: in the folders `folder("reports_dir")`
    and `folder("cache_dir")` name; only in a project (a folder with a `pyproject.toml` or a policy
    file), and not while another run holds its cache (its reports are its own). No cache folder is
    made for it: where there is none, no run holds it."""
    if not ((root / "pyproject.toml").is_file() or (root / "mutmut_config.py").is_file()):
        return
    cache = folder("cache_dir")
    try:
        with exclusive(cache, 0) if lock and cache.is_dir() else contextlib.nullcontext():
            record_stopped(error, root, folder("reports_dir"), shard, changed)
    except LockedError:
        pass


def _write_verdict(result: GateResult, out: Path) -> None:
    for report in VERDICT_REPORTS:
        write_atomic(out / report.path, report.render(result))
