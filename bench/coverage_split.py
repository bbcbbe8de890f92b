"""Where the coverage step's time goes: the curated suite run plain and with each thing the gate's
measurement adds, side by side, and the gate's coverage step itself in one process and split across
the workers.

    python bench/coverage_split.py [--repeat 3]

Rows, each a median of `--repeat` runs, interleaved: importing torch and the engine; pytest's
collection of the suite (imports, test modules, assertion rewriting); the suite plain; with
coverage.py's line+branch measurement (pytest-cov); with per-test contexts too (the gate's
measurement, one process); `python -m gate --only-coverage` (snapshot, regions, the measurement and its
analysis, no mutants) with the measurement in one process and split across the workers.
"""

from __future__ import annotations

import argparse
import shutil

from common import PYTHON, fresh_copy, median, report, timed

SUITE = "tests/errors"
PYTEST = [PYTHON, "-m", "pytest", SUITE, "-q", "-p", "no:cacheprovider"]
COVERAGE = ["--cov=shardengine", "--cov-branch", "--cov-report="]
STEPS = [
    ("import torch + shardengine", [PYTHON, "-c", "import torch, shardengine"], {}),
    ("pytest --collect-only", [*PYTEST, "--collect-only"], {}),
    ("suite, plain", PYTEST, {}),
    ("suite + coverage (line, branch)", [*PYTEST, *COVERAGE], {}),
    ("suite + coverage + per-test contexts", [*PYTEST, *COVERAGE, "--cov-context=test"], {}),
    ("gate --only-coverage, 1 process", [PYTHON, "-m", "gate", "-q", "--only-coverage"],
     {"GATE_LEVERS_OFF": "measurement-split"}),
    ("gate --only-coverage, split", [PYTHON, "-m", "gate", "-q", "--only-coverage"], {}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    project = fresh_copy("coverage-split")
    seconds: dict[str, list[float]] = {label: [] for label, _, _ in STEPS}
    for _ in range(args.repeat):
        for label, command, env in STEPS:
            shutil.rmtree(project / ".gate", ignore_errors=True)
            run = timed(command, project, env=env)
            assert run.returncode == 0, f"{label}: {run.stdout[-2000:]}"
            seconds[label].append(run.seconds)
    plain = median(seconds["suite, plain"])
    rows = [[label, median(values), f"{min(values):.1f}-{max(values):.1f}", round(median(values) / plain, 2)]
            for label, values in seconds.items()]
    report("coverage_split", ["step", "median s", "range s", "/ suite plain"], rows,
           {"seconds": seconds, "suite": SUITE})


if __name__ == "__main__":
    main()
