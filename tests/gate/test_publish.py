"""Where a run's reports go, in-process (`gate.publish`, `gate.report.registry`): every registered
report written at its path, a stopped run's verdict files alone, the last run's reports cleared
and the user's files kept, a stopped or unloaded run's own verdict recorded; a run that stopped
before it checked anything (a mistyped flag, a cache or reports folder it cannot use) keeps the
earlier run's pages under a banner, and a reports folder it cannot write is one line and exit 2
(a real read-only folder). The runs are stored real ones (`tests/gate/golden`); `run_gate` itself
is replaced where a test needs a run."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from gate import cli, publish
from gate.errors import ConfigError, InfrastructureError, RedSuiteError
from gate.lock import exclusive
from gate.merge import merge
from gate.publish import clear_reports, record_stopped, record_unloaded, replace_reports, write_reports
from gate.report.registry import (COVERAGE_PAGES, PAGE_REPORTS, PAGES, REPORTS, STOPPED_REPORTS, VERDICT_FILES,
                                  VERDICT_REPORTS)
from gate.result import GateResult, from_dict, stamp
from gate.settings import load_settings
from tests.gate.conftest import copy_fixture

GOLDEN = Path(__file__).resolve().parent / "golden"
README = "the user's own"


def golden(case: str) -> GateResult:
    return from_dict(json.loads((GOLDEN / case / "gate-result.json").read_text(encoding="utf-8")))


STOPPED_FILES = sorted(r.path for r in STOPPED_REPORTS)
"""What a stopped full run leaves: its verdict files, SARIF and JUnit."""


def assert_says_it_stopped(pages: Path, exit_code: int) -> None:
    """The SARIF and JUnit CI reads say the run stopped, with its exit code: never a clean run."""
    [invocation] = json.loads((pages / "gate.sarif").read_text())["runs"][0]["invocations"]
    assert (invocation["executionSuccessful"], invocation["exitCode"]) == (False, exit_code)
    assert f'type="exit {exit_code}"' in (pages / "gate-junit.xml").read_text()


def files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def last_runs_reports(reports: Path) -> None:
    """A full run's and a --changed run's reports from before, coverage.py's pages among them, and the user's README."""
    for page in [*(r.path for r in REPORTS), "coverage.json", "coverage/index.html", "coverage/z_1_store_py.html"]:
        for folder in (reports, reports / "changed"):
            (folder / page).parent.mkdir(parents=True, exist_ok=True)
            (folder / page).write_text("from the last run")
    (reports / "README.md").write_text(README)


@pytest.fixture
def project(tmp_path):
    return copy_fixture("strong", tmp_path)


def test_the_registry_names_every_file_a_run_leaves_and_nothing_twice():
    paths = [r.path for r in REPORTS]
    assert len(paths) == len(set(paths))
    assert VERDICT_FILES == ("summary.json", "gate-result.json") == tuple(r.path for r in VERDICT_REPORTS)
    assert sorted(PAGES) == sorted(["index.html", "gate.sarif", "gate-junit.xml", "coverage.json", "coverage",
                                    "mutation"])
    # a stopped run writes what CI reads: its verdict files, and its SARIF and JUnit saying it stopped
    assert [r.path for r in STOPPED_REPORTS] == ["summary.json", "gate-result.json", "gate.sarif", "gate-junit.xml"]
    assert {r.path.split("/")[0] for r in PAGE_REPORTS} | set(COVERAGE_PAGES) == set(PAGES)
    assert not set(VERDICT_FILES) & set(PAGES)


def test_write_reports_writes_every_registered_report_at_its_path(tmp_path):
    result = golden("failed")
    write_reports(result, tmp_path, tmp_path)
    assert files(tmp_path) == sorted(r.path for r in REPORTS)
    for report in REPORTS:
        assert (tmp_path / report.path).read_text(encoding="utf-8") == report.render(result), report.path


def test_a_changed_runs_pages_go_to_their_folder_and_its_verdict_files_to_the_reports_folder(tmp_path):
    result = golden("changed")
    write_reports(result, tmp_path / "changed", tmp_path)
    assert files(tmp_path) == sorted([*VERDICT_FILES, *(f"changed/{r.path}" for r in PAGE_REPORTS)])
    assert "--changed run (the staged changes)" in (tmp_path / "changed/index.html").read_text()


@pytest.mark.parametrize("case", ["stopped", "shard-stopped"])
def test_a_stopped_result_writes_its_verdict_files_and_what_ci_reads_alone(tmp_path, project, case):
    result = golden("stopped")
    if case == "shard-stopped":  # what `gate merge` makes of a stopped shard
        result = merge([dataclasses.replace(result, shard=(1, 1))], load_settings(project))
        assert result.error == "shard-stopped"
    reports = tmp_path / "reports"
    write_reports(result, reports, reports)
    assert files(reports) == STOPPED_FILES
    assert json.loads((reports / "summary.json").read_text())["verdict"] == "error"
    # a merged stop is exit 3 too: the most serious of its shards'
    assert_says_it_stopped(reports, int(result.verdict.exit_code))
    assert result.verdict.exit_code == 3


def test_clear_reports_removes_every_page_and_verdict_file_and_keeps_the_users_files(tmp_path):
    last_runs_reports(tmp_path)
    (tmp_path / "mine.txt").write_text("kept")
    clear_reports(tmp_path)
    assert files(tmp_path) == ["README.md", "mine.txt"]
    assert (tmp_path / "README.md").read_text() == README


def test_a_changed_run_clears_the_verdict_files_and_its_own_pages_only(tmp_path):
    last_runs_reports(tmp_path)
    clear_reports(tmp_path, changed=True)
    full_pages = [r.path for r in PAGE_REPORTS] + ["coverage.json", "coverage/index.html", "coverage/z_1_store_py.html"]
    assert files(tmp_path) == sorted(["README.md", *full_pages])


def test_clear_reports_of_a_folder_that_is_not_there_is_nothing(tmp_path):
    clear_reports(tmp_path / "reports")
    assert not (tmp_path / "reports").exists()


def test_a_symlinked_page_is_unlinked_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "keep").mkdir(parents=True)
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "coverage").symlink_to(elsewhere, target_is_directory=True)
    clear_reports(reports)
    assert not (reports / "coverage").exists() and (elsewhere / "keep").is_dir()


def test_record_stopped_leaves_the_runs_own_verdict_and_nothing_of_the_last_run(tmp_path):
    last_runs_reports(tmp_path)
    record_stopped(RedSuiteError("the suite fails on unmutated code: t::a"), Path("/p/strong"), tmp_path,
                   (2, 3), changed=False)
    assert files(tmp_path) == ["README.md", *STOPPED_FILES]
    assert_says_it_stopped(tmp_path, 3)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["verdict"], summary["exit_code"], summary["shard"]) == ("error", 3, [2, 3])
    assert [f["message"] for f in summary["findings"]] == ["[red-suite] the suite fails on unmutated code: t::a"]
    result = from_dict(json.loads((tmp_path / "gate-result.json").read_text()))
    assert (result.error, result.project, result.shard) == ("red-suite", "/p/strong", (2, 3))
    assert set(result.versions) == {"gate", "python"}


def test_a_stopped_changed_run_keeps_the_last_full_runs_pages(tmp_path):
    last_runs_reports(tmp_path)
    full_sarif = (tmp_path / "gate.sarif").read_text()
    record_stopped(ConfigError("bad flag"), Path("/p"), tmp_path, None, changed=True)
    # the full run's pages stay whole (its SARIF too); the --changed run's own say it stopped
    assert "index.html" in files(tmp_path) and (tmp_path / "gate.sarif").read_text() == full_sarif
    assert files(tmp_path / "changed") == ["gate-junit.xml", "gate.sarif"]
    assert_says_it_stopped(tmp_path / "changed", 2)
    assert json.loads((tmp_path / "summary.json").read_text())["exit_code"] == 2


def test_record_stopped_never_raises_where_it_cannot_write(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    record_stopped(ConfigError("bad flag"), tmp_path, blocked, None, changed=False)
    assert blocked.read_text() == "not a folder"


def test_record_unloaded_writes_in_a_project_only_and_not_while_another_run_holds_it(tmp_path, project):
    def folder(name: str) -> Path:
        return project / {"reports_dir": "reports", "cache_dir": ".gate"}[name]

    error = ConfigError("[tool.gate] bad setting")
    record_unloaded(error, tmp_path / "not-a-project", lambda name: tmp_path / "not-a-project" / name, None, False)
    assert not (tmp_path / "not-a-project").exists()
    record_unloaded(error, project, folder, None, False)
    assert files(project / "reports") == sorted([".gitignore", *STOPPED_FILES])  # a folder it made: ignored
    assert not (project / ".gate").exists()  # no cache folder made for it
    (project / "reports/summary.json").unlink()
    with exclusive(project / ".gate", 0):  # another run's reports are its own
        record_unloaded(error, project, folder, None, False)
    assert not (project / "reports/summary.json").exists()
    record_unloaded(error, project, folder, None, False, lock=False)  # `gate merge`: no lock to ask
    assert (project / "reports/summary.json").exists()


def test_run_and_publish_replaces_the_last_runs_reports_with_its_own(project, monkeypatch):
    settings = load_settings(project)
    last_runs_reports(settings.reports_dir)
    result = golden("passed")
    monkeypatch.setattr(publish, "run_gate", lambda settings, progress: result)
    assert publish.run_and_publish(settings, progress=None) is result
    assert files(settings.reports_dir) == sorted(["README.md", *(r.path for r in REPORTS)])
    assert (settings.reports_dir / "gate-result.json").read_text() == (GOLDEN / "passed/gate-result.json").read_text()


def test_a_run_that_stops_leaves_its_verdict_and_raises_its_error(project, monkeypatch):
    settings = load_settings(project)
    last_runs_reports(settings.reports_dir)

    def red(settings, progress):
        raise RedSuiteError("the suite fails on unmutated code: t::a")

    monkeypatch.setattr(publish, "run_gate", red)
    with pytest.raises(RedSuiteError):
        publish.run_and_publish(settings, progress=None)
    assert files(settings.reports_dir) == ["README.md", *STOPPED_FILES]
    assert json.loads((settings.reports_dir / "summary.json").read_text())["exit_code"] == 3


def test_an_unexpected_error_is_recorded_as_the_gates_own(project, monkeypatch, tmp_path):
    settings = load_settings(project)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where its traceback goes

    def broken(settings, progress):
        raise RuntimeError("a bug")

    monkeypatch.setattr(publish, "run_gate", broken)
    with pytest.raises(InfrastructureError) as raised:
        publish.run_and_publish(settings, progress=None)
    summary = json.loads((settings.reports_dir / "summary.json").read_text())
    assert summary["exit_code"] == int(raised.value.exit_code) == 4
    assert summary["findings"][0]["message"].startswith(f"[{raised.value.slug}] unexpected RuntimeError: a bug")


def test_replace_reports_writes_the_merged_result_over_the_last_runs(project):
    settings = load_settings(project)
    last_runs_reports(settings.reports_dir)
    result = golden("failed")
    replace_reports(result, settings)
    assert files(settings.reports_dir) == sorted(["README.md", *(r.path for r in REPORTS)])
    assert not (settings.reports_dir / "changed").exists()


# ----------------------------------------------------------------------------------------------
# a run that stops before it checked anything keeps the earlier run's pages

def earlier_full_run(reports: Path) -> dict[str, bytes]:
    """A real earlier run's reports (the stored failing one), as they lie on disk."""
    write_reports(golden("failed"), reports, reports)
    (reports / "README.md").write_text(README)
    return {name: (reports / name).read_bytes() for name in files(reports)}


def test_a_mistyped_flag_keeps_the_earlier_runs_pages_and_says_whose_they_are(project, capsys):
    reports = project / "reports"
    before = earlier_full_run(reports)
    assert cli.main(["--project", str(project), "--chnaged"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("gate: error [usage]: unrecognized arguments: --chnaged")
    # every page a reviewer may have open is still there; the verdict files are this run's
    assert files(reports) == sorted(before)
    for name in before:
        if name not in (*STOPPED_FILES, "index.html"):
            assert (reports / name).read_bytes() == before[name], name
    summary = json.loads((reports / "summary.json").read_text())
    assert (summary["verdict"], summary["exit_code"]) == ("error", 2)
    assert from_dict(json.loads((reports / "gate-result.json").read_text())).error == "usage"
    # the front page: the earlier run's, under a banner naming the run that came after it
    page = (reports / "index.html").read_text()
    banner = page.split("<div id='later' class='later'>", 1)[1].split("</div>", 1)[0]
    assert "Not the latest run." in banner and "gate ERROR (exit 2: usage or configuration error" in banner
    assert "[usage] unrecognized arguments: --chnaged" in banner
    assert page.index(banner) < page.index("<h1>gate FAILED</h1>")  # above the earlier run's own verdict
    assert page.replace(f"<div id='later' class='later'>{banner}</div>", "") == before["index.html"].decode()


def test_a_second_stop_replaces_the_banner_and_a_changed_run_takes_it_down(project):
    reports = project / "reports"
    before = earlier_full_run(reports)
    assert cli.main(["--project", str(project), "--chnaged"]) == 2
    assert cli.main(["--project", str(project), "--max-workers", "many"]) == 2
    page = (reports / "index.html").read_text()
    assert page.count("Not the latest run.") == 1 and "--max-workers: invalid int value" in page
    assert "--chnaged" not in page
    # a --changed run that starts checking keeps the full run's pages as they were, banner gone
    publish.prepare_reports(reports, changed=True)
    assert (reports / "index.html").read_bytes() == before["index.html"]


def test_a_cache_folder_that_cannot_hold_the_lock_keeps_the_earlier_pages(project):
    settings = dataclasses.replace(load_settings(project), cache_dir=project / "cachefile")
    (project / "cachefile").write_text("a file where the cache folder should be")
    before = earlier_full_run(settings.reports_dir)
    with pytest.raises(InfrastructureError):
        publish.run_and_publish(settings, progress=None)
    assert files(settings.reports_dir) == sorted(before)
    assert json.loads((settings.reports_dir / "summary.json").read_text())["exit_code"] == 4
    assert "Not the latest run." in (settings.reports_dir / "index.html").read_text()


# ----------------------------------------------------------------------------------------------
# a reports folder the gate cannot write: one line naming it, exit 2

@pytest.fixture
def read_only_reports(project):
    """The project's reports folder, holding an earlier run's reports, made read-only for real:
    mode 0o555, and where that does not stop this process (root), the immutable attribute."""
    reports = project / "reports"
    before = earlier_full_run(reports)
    reports.chmod(0o555)
    immutable = False
    if _takes_a_new_file(reports):  # root: file modes do not stop it
        done = subprocess.run(["chattr", "+i", str(reports)], capture_output=True, text=True) \
            if shutil.which("chattr") else None
        immutable = done is not None and done.returncode == 0
        if not immutable or _takes_a_new_file(reports):
            reports.chmod(0o755)
            pytest.skip("nothing here makes a folder read-only to this process (root, and no chattr +i)")
    yield reports, before
    if immutable:
        subprocess.run(["chattr", "-i", str(reports)], check=True)
    reports.chmod(0o755)


def _takes_a_new_file(folder: Path) -> bool:
    probe = folder / "probe"
    try:
        probe.write_text("")
    except OSError:
        return False
    probe.unlink()
    return True


def test_a_read_only_reports_folder_is_one_line_naming_it_and_exit_2(project, read_only_reports, capsys,
                                                                        monkeypatch, tmp_path):
    reports, before = read_only_reports
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where a traceback would go
    (tmp_path / "tmp").mkdir()
    assert cli.main(["--project", str(project)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"gate: error [config]: the reports folder {reports.resolve()} cannot be written: ")
    assert line.split(": ")[3].split(";")[0] in ("Permission denied", "Operation not permitted")
    assert line.endswith("make it writable, or name another with --reports-dir or [tool.gate] reports_dir")
    assert list((tmp_path / "tmp").iterdir()) == []  # no traceback: not the gate's own error
    # nothing new could go in: the earlier verdict files are this run's now, overwritten where they lie
    assert files(reports) == sorted(before)
    summary = json.loads((reports / "summary.json").read_text())
    assert (summary["verdict"], summary["exit_code"]) == ("error", 2)
    assert summary["findings"][0]["message"].startswith("[config] the reports folder ")
    assert "Not the latest run." in (reports / "index.html").read_text()
    # what CI reads says this run stopped, never the earlier run's clean results
    [invocation] = json.loads((reports / "gate.sarif").read_text())["runs"][0]["invocations"]
    assert (invocation["executionSuccessful"], invocation["exitCode"]) == (False, 2)
    assert 'errors="1"' in (reports / "gate-junit.xml").read_text()


def test_a_reports_folder_under_a_file_is_one_line_naming_it_and_exit_2(project, capsys):
    (project / "afile").write_text("a file where a folder should be")
    assert cli.main(["--project", str(project), "--reports-dir", "afile/reports"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == (f"gate: error [config]: the reports folder {(project / 'afile/reports').resolve()} cannot be "
                    "written: Not a directory; make it writable, or name another with --reports-dir or "
                    "[tool.gate] reports_dir")
    assert (project / "afile").read_text() == "a file where a folder should be"


def test_list_regions_writes_no_report_and_says_whose_the_reports_there_are(project, capsys):
    reports = project / "reports"
    before = earlier_full_run(reports)
    assert cli.main(["--project", str(project), "--list-regions"]) == 0
    out, err = capsys.readouterr()
    assert "vault/store.py:" in out and "except" in out
    whose = stamp(from_dict(json.loads(before["gate-result.json"])).run)
    assert err.strip() == (f"gate: --list-regions checks nothing and writes no report: {reports / 'summary.json'} "
                           f"and the other reports there are still those of {whose}")
    assert {name: (reports / name).read_bytes() for name in files(reports)} == before  # untouched


def test_list_regions_with_no_reports_says_nothing_of_them(project, capsys):
    assert cli.main(["--project", str(project), "--list-regions"]) == 0
    assert capsys.readouterr().err == ""
    assert not (project / "reports").exists()


def test_a_reports_folder_the_gate_makes_is_ignored_by_git_and_one_already_there_is_left_alone(project, capsys):
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    assert cli.main(["--project", str(project), "--chnaged"]) == 2  # a run that stops at once still writes
    reports = project / "reports"
    assert (reports / ".gitignore").read_text().splitlines()[-1] == "*"
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=project,
                            capture_output=True, text=True, check=True).stdout
    assert (reports / "summary.json").exists() and "reports/" not in status, status
    mine = project / "mine"
    mine.mkdir()
    assert cli.main(["--project", str(project), "--reports-dir", "mine", "--chnaged"]) == 2
    assert not (mine / ".gitignore").exists() and (mine / "summary.json").exists()
