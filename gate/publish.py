"""A run and its reports, one at a time per repository: the cache's lock is held while the last
run's reports are cleared, the gate runs, and this run's reports are written. Whatever stops a
run, what it leaves in the reports folder is its own verdict (`summary.json`, `gate-result.json`,
`gate.sarif`, `gate-junit.xml`), which CI reads like any other. A run that stopped once it began checking leaves no page of the run
before; one that stopped before it checked anything (a mistyped flag, a broken setting, a reports
folder it cannot write) keeps the earlier run's pages, which a reviewer may have open, and its
front page says they are the earlier run's.

The renderers in `gate.report` turn a `GateResult` into text, and `gate.report.registry` names each
report's path; this module decides which folder they go in, and when."""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gate import __version__
from gate.errors import ConfigError, GateError, InfrastructureError, LockedError, as_gate_error
from gate.files import overwrite, writable_folder, write_atomic
from gate.lock import exclusive
from gate.progress import Progress
from gate.report.registry import FRONT_PAGE, PAGES, STOPPED_REPORTS, VERDICT_FILES, Report, marked_earlier, written
from gate.result import GateResult, from_dict, stamp, stopped_result
from gate.run import run_gate
from gate.settings import Settings
from gate.verdict import Finding

# Everything a run writes to the reports folder (a --changed run's pages go to `changed/` in it) is
# in the registry (`VERDICT_FILES`, `PAGES`); anything else there (its README) is the user's.
CHANGED = "changed"
# what a folder the user can fix answers (its mode, a read-only mount, a file in its place): exit 2
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST, errno.EISDIR}


def run_and_publish(settings: Settings, progress: Progress) -> GateResult:
    """Run the gate under the cache's lock and write its reports; a run that stops early leaves
    its own verdict files, and its error (as a `GateError`) goes on up."""
    changed = settings.changed is not None
    record = (settings.root, settings.reports_dir, settings.shard, changed)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(exclusive(settings.cache_dir, settings.lock_timeout))
            # found now, not after the run's minutes, and before the earlier run's pages are gone
            prepare_reports(settings.reports_dir, changed=changed)
        except LockedError:  # another run's reports are its own
            raise
        except BaseException as error:  # nothing checked yet: still this run's verdict, the earlier pages kept
            raise _recorded(error, *record, keep_pages=True) from None
        try:
            result = run_gate(settings, progress)
            write_reports(result, settings.pages_dir, settings.reports_dir)
        except BaseException as error:
            raise _recorded(error, *record) from None
    return result


def prepare_reports(reports_dir: Path, changed: bool = False) -> None:
    """The reports folder made ready for a run: writable (a `ConfigError` naming it, else), the last
    run's reports cleared (`clear_reports`), and a full run's front page that a `--changed` run
    keeps no longer saying a stopped run came after it."""
    try:
        _made_ignored(reports_dir)
    except OSError as error:
        raise unwritable(reports_dir, error) from None
    problem = writable_folder(reports_dir)
    if problem is not None:
        raise unwritable(reports_dir, problem)
    try:
        clear_reports(reports_dir, changed=changed)
    except OSError as error:
        raise unwritable(reports_dir, error) from None
    if changed:
        _mark_earlier(None, reports_dir)


def _made_ignored(reports_dir: Path) -> None:
    """A reports folder the gate makes holds its output alone: git ignores it, as it does the cache
    folder. One that is there already is the user's to configure (this repository tracks a README
    in its own)."""
    if reports_dir.exists():
        return
    reports_dir.mkdir(parents=True)
    (reports_dir / ".gitignore").write_text("# the gate's reports, rewritten by every run\n*\n", encoding="utf-8")


def unwritable(folder: Path, error: OSError) -> GateError:
    """The one line for a reports folder the gate cannot write: a configuration error where the
    user can fix the folder or name another, an infrastructure one (a full disk) else."""
    where = f" ({error.filename})" if error.filename and Path(error.filename) != folder else ""
    message = (f"the reports folder {folder} cannot be written: {error.strerror or error}{where}; make it "
               "writable, or name another with --reports-dir or [tool.gate] reports_dir")
    return ConfigError(message) if error.errno in _NOT_WRITABLE else InfrastructureError(message)


def _recorded(error: BaseException, root: Path, reports_dir: Path, shard: tuple[int, int] | None,
              changed: bool, *, keep_pages: bool = False) -> BaseException:
    """`error` as the gate's error, recorded as the run's verdict (`record_stopped`); an exception
    that is not the gate's to translate (SystemExit) comes back as it is."""
    gate_error = as_gate_error(error)
    if gate_error is None:
        return error
    record_stopped(gate_error, root, reports_dir, shard, changed, keep_pages=keep_pages)
    return gate_error


def replace_reports(result: GateResult, settings: Settings) -> None:
    """The last run's reports replaced by `result`'s (what `gate merge` does with the merged result)."""
    prepare_reports(settings.reports_dir)
    write_reports(result, settings.pages_dir, settings.reports_dir)


def write_reports(result: GateResult, pages: Path, reports_dir: Path) -> None:
    """Every report of a run: the verdict files in `reports_dir`, the pages in `pages` (coverage.py
    wrote `coverage/` and `coverage.json` there already). Each page says which run and commit it shows."""
    for report in written(result):  # a stopped run's (stopped shards, merged): its verdict files, SARIF, JUnit
        folder = reports_dir if report.verdict else pages
        try:
            write_atomic(folder / report.path, report.render(result))
        except OSError as error:
            raise unwritable(reports_dir, error) from None


def clear_reports(reports_dir: Path, changed: bool = False) -> None:
    """Remove the last run's reports, so that none outlives the run that replaces it: the verdict
    files always, and this kind of run's pages (a `--changed` run's are `changed/`; a full run
    replaces every page, the last `--changed` run's too)."""
    pages = [reports_dir / CHANGED] if changed else [reports_dir / CHANGED, *(reports_dir / p for p in PAGES)]
    for path in [*(reports_dir / name for name in VERDICT_FILES), *pages]:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def record_stopped(error: GateError, root: Path, reports_dir: Path, shard: tuple[int, int] | None,
                   changed: bool, *, keep_pages: bool = False) -> None:
    """A run that `error` stopped: the last run's verdict files and this kind of run's pages removed
    (none may be read as this run's), then its own verdict files (`gate-result.json` is what
    `gate merge` reads from each shard) and its SARIF and JUnit, which say it stopped and why. With
    `keep_pages` (it stopped before it checked anything) the earlier run's other pages stay, their
    front pages saying whose they are. Never at the cost of the message: the CLI still prints it."""
    result = stopped_result(str(root), [Finding(error.exit_code, f"[{error.slug}] {error}")], error.slug, shard=shard,
                            versions={"gate": __version__, "python": sys.version.split()[0]})
    with contextlib.suppress(OSError):
        _made_ignored(reports_dir)
        if keep_pages:
            for report, folder in _stopped_files(reports_dir, changed):
                (folder / report.path).unlink(missing_ok=True)
        else:
            clear_reports(reports_dir, changed=changed)
    for report, folder in _stopped_files(reports_dir, changed):
        _write_anyhow(folder / report.path, report.render(result))
    if keep_pages:
        _mark_earlier(result, reports_dir)


def record_unloaded(error: GateError, root: Path, folder: Callable[[str], Path], shard: tuple[int, int] | None,
                    changed: bool, *, lock: bool = True) -> None:
    """`record_stopped` for a run whose settings did not load, so that checked nothing (the earlier
    run's pages stay): in the folders `folder("reports_dir")` and `folder("cache_dir")` name; only
    in a project (a folder with a `pyproject.toml` or a policy file), and not while another run
    holds its cache (its reports are its own). No cache folder is made for it: where there is
    none, no run holds it."""
    if not ((root / "pyproject.toml").is_file() or (root / "mutmut_config.py").is_file()):
        return
    cache = folder("cache_dir")
    try:
        with exclusive(cache, 0) if lock and cache.is_dir() else contextlib.nullcontext():
            record_stopped(error, root, folder("reports_dir"), shard, changed, keep_pages=True)
    except LockedError:
        pass


def _stopped_files(reports_dir: Path, changed: bool) -> list[tuple[Report, Path]]:
    """What a stopped run writes, each with its folder: the verdict files in the reports folder,
    its SARIF and JUnit in this kind of run's pages folder (`changed/` for a `--changed` run)."""
    pages = reports_dir / CHANGED if changed else reports_dir
    return [(report, reports_dir if report.verdict else pages) for report in STOPPED_REPORTS]


def _write_anyhow(path: Path, text: str) -> None:
    """`text` into `path`, or where it cannot be replaced (a read-only folder), over it where it
    lies; nothing where neither can be done."""
    try:
        write_atomic(path, text)
    except OSError:
        with contextlib.suppress(OSError):
            overwrite(path, text)


def _mark_earlier(latest: GateResult | None, reports_dir: Path) -> None:
    """The kept front pages (a full run's, a `--changed` run's) saying that `latest`, which stopped
    before it checked anything, came after them; with None, no longer saying it."""
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    for page in (reports_dir / FRONT_PAGE, reports_dir / CHANGED / FRONT_PAGE):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            marked = marked_earlier(page.read_text(encoding="utf-8"), latest, when)
            if marked is not None:
                _write_anyhow(page, marked)


def earlier_reports(reports_dir: Path) -> str | None:
    """What a command that writes no report (`--list-regions`) says of the reports it left: whose
    they are, so that none is taken for its own; None where there are none."""
    summary = reports_dir / "summary.json"
    if not summary.exists():
        return None
    try:
        whose = stamp(from_dict(json.loads((reports_dir / "gate-result.json").read_text())).run)
    except (OSError, ValueError, KeyError, TypeError):
        whose = "an earlier run"
    return f"{summary} and the other reports there are still those of {whose}"
