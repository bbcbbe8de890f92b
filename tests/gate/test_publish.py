"""Where a run's reports go, in-process (`gate.publish`, `gate.report.registry`): every registered
report written at its path, a stopped run's verdict files alone, the last run's reports cleared
and the user's files kept, a stopped or unloaded run's own verdict recorded. The runs are stored
real ones (`tests/gate/golden`); `run_gate` itself is replaced where a test needs a run."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import pytest

from gate import publish
from gate.errors import ConfigError, InfrastructureError, RedSuiteError
from gate.lock import exclusive
from gate.merge import merge
from gate.publish import clear_reports, record_stopped, record_unloaded, replace_reports, write_reports
from gate.report.registry import COVERAGE_PAGES, PAGE_REPORTS, PAGES, REPORTS, VERDICT_FILES, VERDICT_REPORTS
from gate.result import GateResult, from_dict
from gate.settings import load_settings
from tests.gate.conftest import copy_fixture

GOLDEN = Path(__file__).resolve().parent / "golden"
README = "the user's own"


def golden(case: str) -> GateResult:
    return from_dict(json.loads((GOLDEN / case / "gate-result.json").read_text(encoding="utf-8")))


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
def test_a_stopped_result_writes_its_verdict_files_alone(tmp_path, project, case):
    result = golden("stopped")
    if case == "shard-stopped":  # what `gate merge` makes of a stopped shard
        result = merge([dataclasses.replace(result, shard=(1, 1))], load_settings(project))
        assert result.error == "shard-stopped"
    reports = tmp_path / "reports"
    write_reports(result, reports, reports)
    assert files(reports) == sorted(VERDICT_FILES)
    assert json.loads((reports / "summary.json").read_text())["verdict"] == "error"


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
    assert files(tmp_path) == ["README.md", *sorted(VERDICT_FILES)]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["verdict"], summary["exit_code"], summary["shard"]) == ("error", 3, [2, 3])
    assert [f["message"] for f in summary["findings"]] == ["[red-suite] the suite fails on unmutated code: t::a"]
    result = from_dict(json.loads((tmp_path / "gate-result.json").read_text()))
    assert (result.error, result.project, result.shard) == ("red-suite", "/p/strong", (2, 3))
    assert set(result.versions) == {"gate", "python"}


def test_a_stopped_changed_run_keeps_the_last_full_runs_pages(tmp_path):
    last_runs_reports(tmp_path)
    record_stopped(ConfigError("bad flag"), Path("/p"), tmp_path, None, changed=True)
    assert "index.html" in files(tmp_path) and not (tmp_path / "changed").exists()
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
    assert files(project / "reports") == sorted(VERDICT_FILES)
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
    assert files(settings.reports_dir) == ["README.md", *sorted(VERDICT_FILES)]
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
