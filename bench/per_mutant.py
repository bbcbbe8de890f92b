"""Where a mutant's worker spends its time: a process that imported torch and collected the
curated suite (as mutmut's fork server does) forks one child per run, and each child runs one
test of the suite in one of three ways.

    python bench/per_mutant.py [--repeat 3] [--tests 20]

- `fork only`: the child exits at once (the fork itself, and reaping it);
- `pytest.main`: the child runs `pytest.main` on the test's node id (what each worker did
  before the kept session: configure pytest, load its plugins, collect the test's file, run,
  report);
- `kept session`: the child runs the test in the parent's collected session (`gate.mutmut_adapter.kept_session`),
  what the gate's workers do now;
- `the test itself`: the test's own setup, call and teardown, as pytest timed them in the child.

Each figure is the median over `--tests` tests spread over the suite, of the median of `--repeat`
runs each, all in one process side by side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from common import REPO, report

SUITE = "tests/errors"
ARGS = ["--rootdir=.", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]


class Durations:
    def __init__(self):
        self.seconds = 0.0

    def pytest_runtest_logreport(self, report):
        self.seconds += report.duration


def in_child(run) -> tuple[float, float]:
    """Wall seconds of a forked child that calls `run()` (which returns the test's own seconds)."""
    read, write = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        devnull = open(os.devnull, "w")
        os.dup2(devnull.fileno(), 1)
        os.dup2(devnull.fileno(), 2)
        sys.stdout = sys.stderr = devnull
        os.write(write, str(run()).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    wall = time.perf_counter() - started
    own = float(os.read(read, 64) or 0.0)
    os.close(read)
    return wall, own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tests", type=int, default=20)
    args = parser.parse_args()
    os.chdir(REPO)
    sys.path.insert(0, str(REPO))
    import gc

    import pytest

    from gate.mutmut_adapter.kept_session import KeptSession

    durations = Durations()
    kept = KeptSession([*ARGS, SUITE], [durations])
    gc.freeze()
    ids = sorted(kept.ids)
    step = max(1, len(ids) // args.tests)
    chosen = ids[::step][:args.tests]

    def main_run(test):
        main_durations = Durations()
        pytest.main([*ARGS, test], plugins=[main_durations])
        return main_durations.seconds

    def kept_run(test):
        kept.run(kept.select([test]))
        return durations.seconds

    ways = {"fork only": lambda test: 0.0, "pytest.main": main_run, "kept session": kept_run}
    per_test: dict[str, list[float]] = {way: [] for way in [*ways, "the test itself"]}
    for test in chosen:
        walls: dict[str, list[float]] = {way: [] for way in ways}
        own: list[float] = []
        for _ in range(args.repeat):
            for way, run in ways.items():
                wall, seconds = in_child(lambda: run(test))
                walls[way].append(wall)
                if way == "kept session":
                    own.append(seconds)
        for way in ways:
            per_test[way].append(statistics.median(walls[way]))
        per_test["the test itself"].append(statistics.median(own))
    medians = {way: round(statistics.median(values) * 1000, 1) for way, values in per_test.items()}
    test_ms = medians["the test itself"]
    rows = [[way, ms, round(ms - test_ms, 1) if way in ("pytest.main", "kept session") else ""]
            for way, ms in medians.items()]
    print(f"{len(chosen)} tests of {SUITE}, {args.repeat} runs each, one forked child per run")
    report("per_mutant", ["a worker's run of one test", "median ms", "beyond the test ms"], rows,
           {"milliseconds": medians, "tests": chosen, "per_test_seconds": per_test})


if __name__ == "__main__":
    main()
