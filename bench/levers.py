"""What each speed lever of the gate buys: cold full runs on this repository with one lever
switched off at a time (`GATE_LEVERS_OFF`), and with one worker instead of one per core.

    python bench/levers.py [--repeat 3]

Levers: `preload` (the fork server imports torch, the engine and the tests once, so each
mutant's worker starts with them; off, each worker imports them itself), `freeze` (gc.freeze()
in the fork server after it imported torch and the tests), `line-tests` (a mutant runs only the
tests that executed its lines, not every test of its function), `killer-first` (a test that
killed a function's other mutants runs first), `kept-session` (each worker runs its tests in the
fork server's collected pytest session, not a `pytest.main` of its own), `measurement-split` (the
measurement is split across processes where that pays; on 2 cores it never does), workers.

    python bench/levers.py --only "without preload"   # one lever beside all levers on
"""

from __future__ import annotations

import argparse
import os
import shutil

from common import PYTHON, fresh_copy, gate_summary, median, report, timed

CONFIGS = [
    ("all levers on", {}, []),
    ("without preload", {"GATE_LEVERS_OFF": "preload"}, []),
    ("without freeze", {"GATE_LEVERS_OFF": "freeze"}, []),
    ("without line-tests", {"GATE_LEVERS_OFF": "line-tests"}, []),
    ("without killer-first", {"GATE_LEVERS_OFF": "killer-first"}, []),
    ("without kept-session", {"GATE_LEVERS_OFF": "kept-session"}, []),
    ("without measurement-split", {"GATE_LEVERS_OFF": "measurement-split"}, []),
    ("1 worker", {}, ["--max-workers", "1"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="+", metavar="CONFIG",
                        help="run only these configs (by label), besides 'all levers on'")
    args = parser.parse_args()
    unknown = set(args.only or []) - {label for label, _, _ in CONFIGS}
    if unknown:
        parser.error(f"unknown config {sorted(unknown)[0]!r}")
    configs = [c for c in CONFIGS if not args.only or c[0] == "all levers on" or c[0] in args.only]
    project = fresh_copy("levers")
    results: dict[str, list] = {label: [] for label, _, _ in configs}
    for _ in range(args.repeat):  # interleaved, so that drift in the machine's load hits every config
        for label, env, flags in configs:
            shutil.rmtree(project / ".gate", ignore_errors=True)
            run = timed([PYTHON, "-m", "gate", "-q", *flags], project, env={**os.environ, **env})
            summary = gate_summary(project)
            # with a lever off a run must still test every mutant; its verdict is recorded, not
            # required (without preload, CPython 3.11 can fail one mutant's test run: exit 4)
            assert run.returncode == 0 or label != "all levers on", run.stdout[-3000:]
            assert "counts" in summary, run.stdout[-3000:]
            results[label].append((run.seconds, summary["timings"]["mutants"], summary["counts"]["selected"],
                                   run.returncode))
    base_total = median([r[0] for r in results["all levers on"]])
    base_mutants = median([r[1] for r in results["all levers on"]])
    rows, data = [], {}
    for label, runs in results.items():
        total, mutants = median([r[0] for r in runs]), median([r[1] for r in runs])
        rows.append([label, total, mutants, round(total / base_total, 2), round(mutants / base_mutants, 2)])
        data[label] = {"total_seconds": [r[0] for r in runs], "mutant_phase_seconds": [r[1] for r in runs],
                       "mutants": runs[0][2], "exit_codes": [r[3] for r in runs]}
    report("levers" if not args.only else "levers-only", ["config", "median total s", "median mutant phase s", "total / all on",
                      "mutant phase / all on"], rows, data)


if __name__ == "__main__":
    main()
