"""Every report, rendered from stored results and compared byte for byte with stored outputs: a
change to a renderer that changes what it writes shows here, as a diff, with no gate run.

Each case is a folder of `tests/gate/golden/`: `gate-result.json`, a real run's (below), and
`expected/`, what each registered report (`gate.report.registry.REPORTS`, at its path) and the
terminal (`terminal.txt` piped, `terminal-100.txt` at 100 columns, `terminal-verbose*.txt` both with
`-v`: every region in the table) render from it; the gate-result.json report's expected output is
the stored result itself. Every report is
rendered for every case, a stopped run's pages too (`gate.publish` writes only its verdict files),
so that no stored result breaks a renderer. The mutation page's inlined viewer (vendored, 240 kB,
never edited) is replaced by a marker before comparing. What the libraries the reporters use write
(junitparser's XML, rich's table, coverage.py's page names) is in the outputs too: upgrading one
may call for an update, read like any other diff.

After an intended change to a report, write the expected outputs anew and read their diff:

    GATE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/gate/test_report_golden.py
    git diff tests/gate/golden

The stored results come from `python -m gate --project P -q --no-explain --max-workers 1` on copies
of the fixtures (`tests.gate.conftest.copy_fixture`), with their `project` rewritten to
`/project/<fixture>` so that nothing names the machine they ran on:

- `passed`: `strong` as shipped.
- `failed`: `operators` with `assert runner.released == 2` loosened to `in (1, 2)` (a survivor),
  `test_invalid_input_is_recorded` renamed to `_invalid_input_is_recorded` (an uncovered handler,
  its mutants untested) and a `test_unrelated_arithmetic` added (a test that runs no region).
- `stopped`: `strong` with `assert store.load("k") == "v"` made `== "w"`: a red suite, exit 3.
- `shard1`, `shard2`: `strong` with `assert store.failures == 2` deleted, run `--shard 1/2` and
  `--shard 2/2` (what `tests/gate/test_merge.py` merges).
- `changed`: `strong` committed to a fresh git repository and run once, then `self.failures += 1`
  given a comment, staged, and run `--changed`.
- `nothing`: `strong` with `vault/store.py` and its test replaced by an `add` function without
  error handling: nothing to check.

When the result format changes (`gate.result.RESULT_FORMAT`), run these again and store their
results the same way, then write the expected outputs anew as above.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from gate.report import mutation_html, terminal
from gate.report.registry import REPORTS
from gate.result import GateResult, from_dict

GOLDEN = Path(__file__).resolve().parent / "golden"
RESULT = "gate-result.json"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / RESULT).is_file())
UPDATE = os.environ.get("GATE_UPDATE_GOLDEN") == "1"
VIEWER = "<vendored viewer: gate/report/vendor/{name}>"


def load(case: str) -> GateResult:
    return from_dict(json.loads((GOLDEN / case / RESULT).read_text(encoding="utf-8")))


def rendered(result: GateResult) -> dict[str, str]:
    """What every report and the terminal show for `result`, by path in `expected/`."""
    shown = {report.path: report.render(result) for report in REPORTS}
    shown["terminal.txt"] = terminal.render(result)
    shown["terminal-100.txt"] = terminal.render(result, 100)
    shown["terminal-verbose.txt"] = terminal.render(result, verbose=True)
    shown["terminal-verbose-100.txt"] = terminal.render(result, 100, verbose=True)
    shown["mutation/index.html"] = _without_viewer(shown["mutation/index.html"])
    return shown


def _without_viewer(page: str) -> str:
    from importlib import resources

    viewer = resources.files("gate.report").joinpath("vendor", mutation_html.VIEWER).read_text(encoding="utf-8")
    inlined = viewer.replace("</script", "<\\/script")
    assert page.count(inlined) == 1
    return page.replace(inlined, VIEWER.format(name=mutation_html.VIEWER))


def stored(case: str) -> dict[str, str]:
    """The expected outputs; gate-result.json's is the stored result itself (read and written
    again, it is the same file: what `gate merge` reads is what ran)."""
    expected = GOLDEN / case / "expected"
    found = {path.relative_to(expected).as_posix(): path.read_bytes().decode("utf-8")
             for path in sorted(expected.rglob("*")) if path.is_file()}
    return {**found, RESULT: (GOLDEN / case / RESULT).read_bytes().decode("utf-8")}


def _write(case: str, shown: dict[str, str]) -> None:
    expected = GOLDEN / case / "expected"
    shutil.rmtree(expected, ignore_errors=True)
    for path, text in shown.items():
        if path == RESULT:
            continue
        (expected / path).parent.mkdir(parents=True, exist_ok=True)
        (expected / path).write_bytes(text.encode("utf-8"))


@pytest.mark.parametrize("case", CASES)
def test_every_report_renders_as_stored(case):
    shown = rendered(load(case))
    if UPDATE:
        _write(case, shown)
    expected = stored(case)
    assert sorted(shown) == sorted(expected), "run with GATE_UPDATE_GOLDEN=1 after adding or removing a report"
    for path, text in shown.items():
        assert text == expected[path], f"{case}/expected/{path} differs (GATE_UPDATE_GOLDEN=1 rewrites it)"


def test_the_cases_cover_a_pass_a_failure_a_stop_shards_and_a_changed_run():
    results = {case: load(case) for case in CASES}
    assert results["passed"].verdict.passed and not results["passed"].verdict.findings
    failed = results["failed"].counts
    assert failed.survived and failed.no_tests and failed.uncovered and failed.tests_in_no_region
    assert results["stopped"].error == "red-suite"
    assert [results[f"shard{k}"].shard for k in (1, 2)] == [(1, 2), (2, 2)]
    assert not results["changed"].whole_suite
    assert results["nothing"].nothing_to_check and not results["nothing"].regions
    # nothing in a stored result names the machine it ran on
    assert all(r.project == f"/project/{Path(r.project).name}" for r in results.values())
