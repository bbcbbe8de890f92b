"""The reports every gate run writes, checked against their published schemas, and the HTML pages
opened in a real headless browser with no network (skipped where Chromium is not installed)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from tests.gate.conftest import copy_fixture, run_gate

SCHEMAS = Path(__file__).resolve().parent.parent / "data" / "schemas"
WEAKENED = "tests/test_strong.py"


@pytest.fixture(scope="module")
def weakened(tmp_path_factory):
    """The operators fixture with one assertion of its good suite loosened: one survivor."""
    project = copy_fixture("operators", tmp_path_factory.mktemp("reports"), {
        WEAKENED: [("    assert runner.released == 2\n", "    assert runner.released in (1, 2)\n")]})
    with (project / WEAKENED).open("a") as tests:  # and a test of the suite that runs no error path
        tests.write("\n\ndef test_unrelated_arithmetic():\n    assert 1 + 1 == 2\n")
    run = run_gate(project)
    assert run.exit_code == 1, run.stdout + run.stderr
    return run


def survivors(run):
    return [m for m in run.mutants() if m["status"] == "survived"]


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_the_loosened_assertion_lets_exactly_one_mutant_survive(weakened):
    assert [(m["operator"], m["original"].strip()) for m in survivors(weakened)] == [
        ("augmented_assignment", "self.released += 1")]


def test_mutation_json_is_valid_against_the_published_schema(weakened):
    report = json.loads((weakened.project / "reports/mutation/mutation.json").read_text())
    schema = json.loads((SCHEMAS / "mutation-testing-report-schema-3.8.4.json").read_text())
    jsonschema.validate(report, schema)
    mutants = report["files"]["ops/runner.py"]["mutants"]
    assert len(mutants) == len(weakened.mutants())
    [survivor] = [m for m in mutants if m["status"] == "Survived"]
    assert survivor["id"] == survivors(weakened)[0]["name"]
    assert survivor["mutatorName"] == "augmented_assignment"
    assert survivor["replacement"] == "self.released = 1"
    assert survivor["location"]["start"] == {"line": 40, "column": 9}
    assert survivor["coveredBy"] == ["tests/test_strong.py::test_oom_is_counted_logged_released_and_returns_none"]
    killed = [m for m in mutants if m["status"] == "Killed"]
    assert killed and all(len(m["killedBy"]) == 1 and m["killedBy"][0] in m["coveredBy"] for m in killed)
    test_ids = {t["id"] for f in report["testFiles"].values() for t in f["tests"]}
    assert {t for m in mutants for t in m["coveredBy"]} <= test_ids
    # every test of the suite is listed, and the one that runs no error-handling region says so
    names = {t["id"]: t["name"] for f in report["testFiles"].values() for t in f["tests"]}
    assert len(names) == weakened.summary["counts"]["tests"] > 5
    assert sorted(i for i, name in names.items() if name.endswith(" (runs no error-handling region)")) == [
        "tests/test_strong.py::test_unrelated_arithmetic", "tests/test_strong.py::test_valid_input_passes_check"]
    assert weakened.summary["counts"]["tests_in_no_region"] == 2


def test_sarif_is_valid_sarif_2_1_0_with_one_result_per_survivor(weakened):
    log = json.loads((weakened.project / "reports/gate.sarif").read_text())
    jsonschema.Draft202012Validator(json.loads((SCHEMAS / "sarif-2.1.0.json").read_text())).validate(log)
    [result] = log["runs"][0]["results"]
    assert result["ruleId"] == "augmented_assignment"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "ops/runner.py"}  # relative, and no absolute base anywhere
    assert "originalUriBaseIds" not in log["runs"][0] and str(weakened.project) not in json.dumps(log)
    assert location["region"] == {"startLine": 40, "endLine": 40}
    tool = log["runs"][0]["tool"]
    assert tool["driver"]["name"] == "gate" and "informationUri" not in tool["driver"]
    assert [(e["name"], e["informationUri"]) for e in tool["extensions"]] == [("mutmut", "https://github.com/boxed/mutmut")]
    [rule] = tool["driver"]["rules"]
    assert rule["id"] == "augmented_assignment"
    assert rule["fullDescription"]["text"] == "an augmented assignment becomes a plain one (+= becomes =)"
    assert rule["help"]["text"].startswith("A test must fail when an augmented assignment becomes a plain one")
    assert result["partialFingerprints"]["gateFinding/v2"] == survivors(weakened)[0]["fingerprint"]


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_a_survivors_fingerprint_survives_an_unrelated_edit_above_it(weakened, tmp_path):
    """The same survivor, two lines lower after an edit elsewhere in the file: the same alert."""
    project = copy_fixture("operators", tmp_path, {
        WEAKENED: [("    assert runner.released == 2\n", "    assert runner.released in (1, 2)\n")],
        "ops/runner.py": [("import logging\n", "import logging\n# a comment\n# and another\n")]})
    run = run_gate(project)
    assert run.exit_code == 1, run.stdout + run.stderr
    before = json.loads((weakened.project / "reports/gate.sarif").read_text())["runs"][0]["results"]
    after = json.loads((project / "reports/gate.sarif").read_text())["runs"][0]["results"]
    assert after[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 42
    assert after[0]["partialFingerprints"] == before[0]["partialFingerprints"]


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_sarif_names_an_uncovered_handler(tmp_path):
    project = copy_fixture("operators", tmp_path, {
        WEAKENED: [("def test_invalid_input_is_recorded", "def _invalid_input_is_recorded")]})
    run = run_gate(project, "--only-coverage")
    assert run.exit_code == 1
    log = json.loads((project / "reports/gate.sarif").read_text())
    jsonschema.Draft202012Validator(json.loads((SCHEMAS / "sarif-2.1.0.json").read_text())).validate(log)
    results = [(r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"])
               for r in log["runs"][0]["results"]]
    assert results == [("uncovered-handler", 34), ("uncovered-region", 36)]


def test_junit_has_one_case_per_region_and_fails_the_one_with_a_survivor(weakened):
    root = ET.parse(weakened.project / "reports/gate-junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == weakened.summary["counts"]["regions"] == 7
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["ops/runner.py:38 cleanup Runner.release"]
    # the suite's time is the run's wall time
    [suite] = root.findall(".//testsuite")
    wall = weakened.summary["timings"]["total"]
    assert float(suite.get("time")) == float(root.get("time")) == wall
    assert all(float(c.get("time")) <= wall for c in cases)
    mutants = weakened.mutants()
    for case in cases:  # a region's own time: its mutants' runs, added up
        region = case.get("name").split(" ", 1)[0]
        assert float(case.get("time")) == round(sum(m["seconds"] for m in mutants if m["region_id"] == region), 3)


def test_summary_has_verdict_exit_code_counts_timings_and_versions(weakened):
    summary = weakened.summary
    assert summary["verdict"] == "failed" and summary["exit_code"] == 1
    assert summary["counts"]["by_status"] == {"killed": summary["counts"]["selected"] - 1, "survived": 1}
    assert summary["by_operator"]["augmented_assignment"] == {"killed": 1, "survived": 1}
    assert {"coverage", "generate", "mutants", "total"} <= set(summary["timings"])
    assert set(summary["versions"]) == {"gate", "python", "mutmut"}
    assert re.match(r"survived: ops/runner\.py:\d+ Runner\.release #\d+ ", summary["findings"][0]["message"])


def test_html_report_embeds_the_survivor_and_the_viewer(weakened):
    page = (weakened.project / "reports/mutation/index.html").read_text()
    assert "<mutation-test-report-app" in page
    assert "customElements.define" in page  # the viewer is inlined: the page needs no network
    assert not re.search(r"<script[^>]*\ssrc=|<link[^>]*\shref=", page)
    embedded = json.loads(page.split(".report = ", 1)[1].split(";</script>", 1)[0].replace("<\\/", "</"))
    statuses = {m["id"]: m["status"] for m in embedded["files"]["ops/runner.py"]["mutants"]}
    assert statuses[survivors(weakened)[0]["name"]] == "Survived"


def test_coverage_reports_have_branches_and_test_contexts(weakened):
    data = json.loads((weakened.project / "reports/coverage.json").read_text())
    assert data["meta"]["branch_coverage"] and data["meta"]["show_contexts"]
    contexts = data["files"]["ops/runner.py"]["contexts"]
    assert "tests/test_strong.py::test_oom_is_counted_logged_released_and_returns_none|run" in contexts["22"]
    assert (weakened.project / "reports/coverage/index.html").exists()


# ----------------------------------------------------------------------------------------------
# a real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
# gathers the text of the viewer's shadow DOM into the page, where --dump-dom can see it
PROBE = """<script>
setTimeout(() => {
  const texts = [];
  const walk = (node) => {
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) texts.push(child.textContent.trim());
      else walk(child);
    }
  };
  walk(document.body);
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = texts.filter(Boolean).join(" | ");
  document.body.appendChild(out);
}, 3000);
</script>"""


def dump_dom(path: Path, tmp_path: Path, fragment: str = "") -> str:
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=10000", "--dump-dom",
         f"{path.as_uri()}{fragment}"],
        capture_output=True, text=True, timeout=120)
    return done.stdout


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
@needs_browser
def test_mutation_report_renders_the_mutants_and_their_statuses_offline(weakened, tmp_path):
    page = weakened.project / "reports/mutation/index.html"
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = dump_dom(probe, tmp_path, "#mutant/runner.py")
    text = html.unescape(dom.split('<pre id="probe">', 1)[1].split("</pre>", 1)[0]).replace(" | ", " ")
    killed = weakened.summary["counts"]["selected"] - 1
    assert "gate: operators" in text and "runner.py" in text
    assert f"Killed ( {killed} )" in text and "Survived ( 1 )" in text  # the status filters
    assert "augmented_assignment Survived" in text  # the survivor's marker on its line
    assert "self . released += 1" in text  # the source, highlighted


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
@needs_browser
def test_coverage_report_renders_offline(weakened, tmp_path):
    folder = weakened.project / "reports/coverage"
    index = dump_dom(folder / "index.html", tmp_path)
    # coverage.py's own page says it is about whole files, and which run it shows
    assert "Whole-file coverage of the guarded files (coverage.py), full run outside git" in index
    assert "runner.py" in index
    [page] = folder.glob("*runner_py.html")
    source = dump_dom(page, tmp_path)
    # the handler's line, with the test that reached it among its contexts
    assert "out of memory on step %s" in html.unescape(source)
    assert "test_oom_is_counted_logged_released_and_returns_none" in source


def test_the_front_page_is_the_regions_own_coverage_and_their_index(weakened):
    page = (weakened.project / "reports/index.html").read_text()
    coverage = weakened.summary["coverage"]
    # the verdict first, then the coverage headline
    assert page.index("<h1>gate FAILED</h1>") < page.index("id='findings'") < page.index("id='headline'")
    headline = page.split("<h2 id='headline'>", 1)[1].split("</h2>", 1)[0]
    def pct(value):
        return "n/a" if value is None else f"{value:.1f}%"

    assert headline == (f"Error-handling coverage: {pct(coverage['statements_percent'])} of region statements "
                        f"({coverage['statements_run']}/{coverage['statements']}), "
                        f"{pct(coverage['branches_percent'])} of region branches "
                        f"({coverage['branches_taken']}/{coverage['branches']}), "
                        f"{sum(r['entered'] for r in weakened.summary['regions'])} of "
                        f"{weakened.summary['counts']['regions']} regions entered")
    # the regions' statements: each region's, counted once where regions nest
    per_region = {(r["region"]["file"], line)
                  for r in json.loads((weakened.project / "reports/gate-result.json").read_text())["regions"]
                  for line in r["statements_run"] + r["statements_missed"]}
    assert coverage["statements"] == len(per_region) > 0
    for region in weakened.summary["regions"]:
        assert f">{region['id']}</a> {html.escape(region['label'])}" in page
    # the release cleanup, line 38: its line in coverage.py's page, its file in the mutation viewer, which
    # routes files by their path below the folder the report's files share ("ops/")
    [page_name] = re.findall(r"href='coverage/(z_[0-9a-f]+_runner_py\.html)#t38'", page)
    assert 'id="t38"' in (weakened.project / "reports/coverage" / page_name).read_text()
    assert "href='mutation/index.html#mutant/runner.py'" in page
    assert "1 mutant(s) not killed" in page
    assert "full run outside git" in page  # the fixture is no git repository


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
@needs_browser
def test_the_front_page_renders_its_headline_offline(weakened, tmp_path):
    dom = dump_dom(weakened.project / "reports/index.html", tmp_path)
    coverage = weakened.summary["coverage"]
    assert "gate FAILED" in dom and "survived: ops/runner.py:40 Runner.release #2 (augmented_assignment)" in dom
    assert f"Error-handling coverage: {coverage['statements_percent']:.1f}% of region statements" in dom


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_a_changed_run_writes_its_pages_apart_and_keeps_the_full_runs(tmp_path):
    project = copy_fixture("operators", tmp_path)
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "s"]):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)
    (project / ".gitignore").write_text("reports/\n.gate/\n")
    full = run_gate(project)
    assert full.exit_code == 0, full.stdout + full.stderr
    full_page = (project / "reports/index.html").read_text()
    runner = project / "ops/runner.py"
    runner.write_text(runner.read_text().replace("self.released += 1", "self.released += 1  # once per call"))
    subprocess.run(["git", "add", "ops/runner.py"], cwd=project, check=True)
    changed = run_gate(project, "--changed")
    assert changed.exit_code == 0, changed.stdout + changed.stderr
    reports = project / "reports"
    # the verdict files are the latest run's; the full run's pages stay, and say which run they show
    assert changed.summary["run"]["kind"] == "--changed run (the staged changes)"
    assert (reports / "index.html").read_text() == full_page and "full run at commit" in full_page
    assert sorted(p.name for p in (reports / "changed").iterdir()) == [
        "coverage", "coverage.json", "gate-junit.xml", "gate.sarif", "index.html", "mutation"]
    assert "--changed run (the staged changes) at commit" in (reports / "changed/index.html").read_text()
    assert "--changed run" in json.loads((reports / "changed/gate.sarif").read_text())["runs"][0]["properties"]["gateRun"]
    # and the next full run replaces every page, the --changed run's too
    assert run_gate(project).exit_code == 0
    assert not (reports / "changed").exists()


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_a_mistyped_flag_keeps_the_full_runs_pages_and_marks_them_the_earlier_runs(tmp_path):
    project = copy_fixture("operators", tmp_path)
    full = run_gate(project)
    assert full.exit_code == 0, full.stdout + full.stderr
    reports = project / "reports"
    pages = {p.relative_to(reports).as_posix(): p.read_bytes() for p in reports.rglob("*") if p.is_file()}
    assert "coverage/index.html" in pages and "gate.sarif" in pages
    typo = run_gate(project, "--chnaged")
    assert typo.exit_code == 2
    assert typo.stderr.strip().startswith("gate: error [usage]: unrecognized arguments: --chnaged")
    assert (typo.summary["verdict"], typo.summary["exit_code"]) == ("error", 2)  # the verdict files: this run's
    left = {p.relative_to(reports).as_posix(): p.read_bytes() for p in reports.rglob("*") if p.is_file()}
    assert sorted(left) == sorted(pages)
    # every page as it was (coverage.py's, the mutation report) but the front page's banner; what CI
    # reads (the verdict files, SARIF, JUnit) is this run's
    assert sorted(name for name in pages if left[name] != pages[name]) == [
        "gate-junit.xml", "gate-result.json", "gate.sarif", "index.html", "summary.json"]
    [invocation] = json.loads((reports / "gate.sarif").read_text())["runs"][0]["invocations"]
    assert (invocation["executionSuccessful"], invocation["exitCode"]) == (False, 2)
    # the front page is the full run's, under a banner naming the run that stopped after it
    page = (reports / "index.html").read_text()
    assert page.index("Not the latest run.") < page.index("<h1>gate PASSED</h1>")
    assert "[usage] unrecognized arguments: --chnaged" in page and "full run outside git" in page
