"""Plain `mutmut run` (every mutant of shardengine/) against the gate's scoped run, on the same
tree in the same session, both cold, both with the curated suite and forkserver isolation.

    python bench/scoped_vs_plain.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

from common import PYTHON, fresh_copy, gate_summary, median, report, timed

MUTMUT_CONFIG = """
[tool.mutmut]
source_paths = ["shardengine"]
pytest_add_cli_args_test_selection = ["tests/errors"]
process_isolation = "forkserver"
"""


def plain_counts(project: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for meta in (project / "mutants").rglob("*.meta"):
        for code in json.loads(meta.read_text())["exit_code_by_key"].values():
            counts[str(code)] = counts.get(str(code), 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    project = fresh_copy("scoped-vs-plain")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + MUTMUT_CONFIG)
    plain, scoped = [], []
    for _ in range(args.repeat):
        shutil.rmtree(project / "mutants", ignore_errors=True)
        run = timed([PYTHON, "-m", "mutmut", "run", "--max-children", "2"], project)
        assert run.returncode == 0, run.stdout[-3000:]
        plain.append((run, plain_counts(project)))
        shutil.rmtree(project / ".gate", ignore_errors=True)
        run = timed([PYTHON, "-m", "gate", "-q", "--max-workers", "2"], project)
        assert run.returncode == 0, run.stdout[-3000:]
        scoped.append((run, gate_summary(project)))
    plain_mutants = sum(plain[0][1].values())
    scoped_mutants = scoped[0][1]["counts"]["selected"]
    plain_s, scoped_s = median([r.seconds for r, _ in plain]), median([r.seconds for r, _ in scoped])
    rate = re.findall(r"([\d.]+) mutations/second", plain[0][0].stdout)
    rows = [["plain mutmut run", plain_mutants, plain_s, rate[-1] if rate else "?"],
            ["gate (scoped)", scoped_mutants, scoped_s, ""],
            ["ratio plain/gate", round(plain_mutants / scoped_mutants, 1), round(plain_s / scoped_s, 1), ""]]
    report("scoped_vs_plain", ["run", "mutants", "median s", "mutmut's mutations/s"], rows, {
        "plain": {"mutants": plain_mutants, "seconds": [r.seconds for r, _ in plain],
                  "exit_codes": plain[0][1]},
        "scoped": {"mutants": scoped_mutants, "seconds": [r.seconds for r, _ in scoped]},
        "ratios": {"mutants": plain_mutants / scoped_mutants, "seconds": plain_s / scoped_s}})


if __name__ == "__main__":
    main()
