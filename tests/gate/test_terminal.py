"""What the terminal shows: a region table that fits the terminal with every label whole, plain
text when piped, and every survivor's tests named or pointed to."""

from __future__ import annotations

import re

from gate.report.terminal import render
from gate.result import GateResult, MutantOutcome, MutantStatus, Region, RegionKind, RegionReport
from gate.verdict import ExitCode, Finding, decide

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
