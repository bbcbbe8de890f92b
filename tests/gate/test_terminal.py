"""What the terminal shows: a pass in a few lines, a failure's table of only the regions with a
finding (every region with `-v`), a table that fits the terminal with every label whole and on one
line where the width allows, plain text when piped, and every survivor's tests named or pointed to."""

from __future__ import annotations

import dataclasses
import re

from gate.report.terminal import render
from gate.result import GateResult, MutantOutcome, MutantStatus, Region, RegionKind, RegionProblem, RegionReport
from gate.verdict import ExitCode, Finding, decide
from tests.gate.test_report_golden import load

LABEL = "except (torch.OutOfMemoryError, torch.cuda.OutOfMemoryError, MemoryError, asyncio.CancelledError)"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def result_with_a_long_label() -> GateResult:
    region = Region(file="shardengine/engine.py", start=321, end=330, kind=RegionKind.EXCEPT,
                    function="TorchDynamicShardInferenceEngine._infer", label=LABEL, entry_line=322,
                    unit="TorchDynamicShardInferenceEngine._infer", unit_decorators=())
    tests = tuple(f"tests/errors/test_out_of_memory.py::StepTests::test_{i}" for i in range(5))
    survivor = MutantOutcome(name="shardengine.engine.x__mutmut_1", file=region.file, unit=region.unit,
                             region_id=region.id, operator="swallow", origin="gate", start=322, end=322,
                             original="raise", replacement="pass", diff="-raise\n+pass\n",
                             status=MutantStatus.SURVIVED, tests=tests,
                             failing="survived: no test failed")
    return GateResult(project="/p", guarded_paths=("shardengine",),
                      verdict=decide([Finding(ExitCode.GATE_FAILED, "survived")]),
                      regions=(RegionReport(region=region, entered=True, tests=tests, missing_branches=()),),
                      mutants=(survivor,))


def test_a_terminal_100_columns_wide_gets_a_table_that_fits_with_the_label_whole():
    shown = render(result_with_a_long_label(), 100)
    table = [ANSI.sub("", line) for line in shown.split("\n\n")[1].splitlines()]
    assert max(len(line) for line in table) <= 100
    # the label is wrapped in its column, not cut: nothing is elided, and all of it is there, in order
    assert "…" not in shown
    rows = iter("".join("".join(table[1:]).split()))
    assert all(char in rows for char in "".join(f"shardengine/engine.py:321 {LABEL}".split()))


def test_an_80_column_terminal_gets_every_column_and_the_whole_region_id():
    shown = render(result_with_a_long_label(), 80)
    table = [ANSI.sub("", line) for line in shown.split("\n\n")[1].splitlines()]
    assert max(len(line) for line in table) <= 80
    assert table[0].split() == ["region", "ran", "tests", "killed", "surv", "t/o", "crash", "untested", "skip"]
    assert "shardengine/engine.py:321" in table[1]


def test_a_terminal_too_narrow_for_every_column_gets_the_plain_table_whole():
    shown = render(result_with_a_long_label(), 40)
    assert not ANSI.search(shown)
    assert f"shardengine/engine.py:321 {LABEL}" in shown
    assert "no tests" in shown and "skipped" in shown


def test_piped_output_is_plain_text_with_the_label_on_one_line():
    shown = render(result_with_a_long_label())
    assert not ANSI.search(shown)
    assert f"shardengine/engine.py:321 {LABEL}" in shown


def test_a_survivor_names_its_first_tests_and_where_the_rest_are():
    shown = render(result_with_a_long_label())
    assert ("    ran: tests/errors/test_out_of_memory.py::StepTests::test_0, "
            "tests/errors/test_out_of_memory.py::StepTests::test_1, "
            "tests/errors/test_out_of_memory.py::StepTests::test_2 and 2 more "
            "(all of them are in gate-result.json and the mutation report)") in shown


def table_ids(shown: str) -> list[str]:
    """The region ids the table's rows start with, in order (the table is the block after the headline)."""
    block = [ANSI.sub("", line) for line in shown.split("\n\n")[1].splitlines()]
    assert block[0].split()[0] == "region"
    return [line.split()[0] for line in block[1:] if ".py:" in line.split()[0]]


def test_a_passing_run_is_its_headline_and_verdict_without_a_table():
    result = load("passed")
    for width in (None, 100, 200):
        shown = render(result, width)
        assert not ANSI.search(shown)
        verdict = "gate PASSED (exit 0: every error-handling mutant killed and every handler entered)"
        assert shown.splitlines() == [shown.splitlines()[0], "", verdict]
        assert shown.startswith("gate: 5 regions in vault; 33 error-handling mutants")
        assert "vault/store.py:" not in shown


def test_a_passing_run_keeps_its_notes_and_its_adopted_warnings():
    region = Region(file="vault/store.py", start=24, end=26, kind=RegionKind.EXCEPT, function="Store.load",
                    label="except OSError", entry_line=25, unit="Store.load", unit_decorators=())
    held = RegionProblem(rule="untaken-branch", message="vault/store.py:24 branch never taken", start=24, end=26,
                         infrastructure=False, identity=("vault/store.py",), adopted="legacy")
    result = GateResult(project="/p", guarded_paths=("vault",), verdict=decide([]), notes=("a note",),
                        regions=(RegionReport(region=region, entered=True, tests=(), missing_branches=(),
                                              problems=(held,)),),
                        adoption_file="gate-adopted.json")
    lines = render(result, 100).splitlines()
    assert lines[1:] == ["", "note: a note", "WARN adopted (legacy): vault/store.py:24 branch never taken",
                         "gate PASSED with 1 adopted finding (exit 0: nothing failed beyond what "
                         "gate-adopted.json holds)"]


def test_a_failing_run_shows_only_the_regions_with_a_finding_and_how_to_see_the_rest():
    result = load("failed")
    for width in (None, 100):
        shown = render(result, width)
        # 34 and 36 never ran, 38 has a survivor; 21 to 29 have every mutant killed
        assert table_ids(shown) == ["ops/runner.py:34", "ops/runner.py:36", "ops/runner.py:38"]
        assert "4 other regions need nothing; -v shows all 7" in shown.splitlines()
        assert "ops/runner.py:21" not in shown
    assert "FAIL [1] ops/runner.py:34 handler never entered (except ValueError)" in render(result)


def test_a_failure_outside_every_region_shows_no_table_but_says_how_many_need_nothing():
    long = result_with_a_long_label()
    killed = dataclasses.replace(long.mutants[0], status=MutantStatus.KILLED, failing=None)
    result = dataclasses.replace(long, mutants=(killed,),
                                 verdict=decide([Finding(ExitCode.GATE_FAILED, "1 test runs no region")]))
    for width in (None, 100):
        lines = render(result, width).splitlines()
        assert lines[1:] == ["", "1 region needs nothing; -v shows all 1", "",
                             "FAIL [1] 1 test runs no region", lines[-1]]
        assert lines[-1].startswith("gate FAILED (exit 1: ")


def test_verbose_shows_every_region_passing_or_failing_and_no_pointer_to_itself():
    for case, regions in (("passed", 5), ("failed", 7)):
        result = load(case)
        for width in (None, 100):
            shown = render(result, width, verbose=True)
            assert table_ids(shown) == [report.region.id for report in result.regions]
            assert len(table_ids(shown)) == regions
            assert "-v shows" not in shown
    assert not ANSI.search(render(load("failed"), verbose=True))


def test_a_200_column_terminal_wraps_no_label():
    for shown in (render(result_with_a_long_label(), 200), render(load("failed"), 200, verbose=True)):
        table = [ANSI.sub("", line) for line in shown.split("\n\n")[1].splitlines()]
        assert max(len(line) for line in table) <= 200
        # every row is one line that starts with its region's id: no line holds a piece of a label alone
        assert all(".py:" in line.split()[0] for line in table[1:])
    table = [ANSI.sub("", line) for line in render(result_with_a_long_label(), 200).splitlines()]
    row = next(line for line in table if line.startswith("shardengine/engine.py:321"))
    assert row.startswith(f"shardengine/engine.py:321 {LABEL} ")
    assert row.split()[-8:] == ["yes", "5", ".", "1", ".", ".", ".", "."]
