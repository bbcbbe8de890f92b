"""The coverage HTML child (`gate.steps.coverage_html`) and its boundary (`gate.wire.coverage_html`):
the real child, started as the gate starts it, from a spec the gate's side wrote."""

from __future__ import annotations

import subprocess
import sys

import coverage
import pytest

from gate.errors import InfrastructureError
from gate.steps.measurement import html_report_beside
from gate.wire import codec, coverage_html
from gate.wire.coverage_html import HtmlReportSpec
from tests.gate.test_wire_driver import renamed


def measured_project(tmp_path):
    """A one-module project and coverage.py's data of running it, where the gate keeps them."""
    work, data_dir = tmp_path / "work", tmp_path / "coverage"
    work.mkdir()
    data_dir.mkdir()
    (work / "mod.py").write_text("def f(x):\n    if x:\n        return 1\n    return 2\n")
    cov = coverage.Coverage(data_file=str(data_dir / ".coverage"), branch=True, config_file=False)
    cov.start()
    try:
        sys.path.insert(0, str(work))
        __import__("mod").f(True)
    finally:
        sys.path.remove(str(work))
        sys.modules.pop("mod", None)
        cov.stop()
    cov.save()
    return work, data_dir


def test_the_child_writes_the_report_the_spec_asks_for(tmp_path):
    work, data_dir = measured_project(tmp_path)
    with html_report_beside(work, data_dir, tmp_path / "pages", "2026-12-08"):
        pass
    page = (tmp_path / "pages" / "coverage" / "index.html").read_text()
    assert "mod.py" in page and "2026-12-08" in page


def test_a_child_that_fails_fails_the_run_with_its_reason(tmp_path):
    work, data_dir = measured_project(tmp_path)
    (data_dir / ".coverage").unlink()
    with pytest.raises(InfrastructureError, match="coverage.py's HTML report failed: .*No data"):
        with html_report_beside(work, data_dir, tmp_path / "pages", "2026-12-08"):
            pass


def test_gate_to_html_child_a_renamed_spec_field_is_named(tmp_path):
    work, data_dir = measured_project(tmp_path)
    spec = HtmlReportSpec(data_file=str(data_dir / ".coverage"), directory=str(tmp_path / "pages"), title="t")
    spec_path = tmp_path / "spec.json"
    codec.write(spec_path, renamed(spec, "data_file", "data"), coverage_html.FORMAT)
    done = subprocess.run([sys.executable, "-P", "-m", "gate.steps.coverage_html", str(spec_path)], cwd=work,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert f"HtmlReportSpec (format {coverage_html.FORMAT}): unknown field 'data'" in last, last
    assert not (tmp_path / "pages").exists()
