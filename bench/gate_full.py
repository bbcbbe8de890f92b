"""The full gate on this repository, cold (no cache) and warm (nothing changed).

    python bench/gate_full.py [--repeat 3]

Reports the median wall time of each, the mutants selected out of those mutmut's operators make,
mutants per second and the peak memory of the whole process tree (RSS sum and PSS). Each run works
on a fresh copy of the repository, so the user's `.gate/` is never touched.
"""

from __future__ import annotations

import argparse
import shutil

from common import PYTHON, fresh_copy, gate_summary, median, report, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    project = fresh_copy("gate-full")
    command = [PYTHON, "-m", "gate", "-q"]
    cold, warm = [], []
    for _ in range(args.repeat):
        shutil.rmtree(project / ".gate", ignore_errors=True)
        run = timed(command, project)
        assert run.returncode == 0, run.stdout[-2000:]
        cold.append((run, gate_summary(project)))
        run = timed(command, project)
        assert run.returncode == 0, run.stdout[-2000:]
        warm.append((run, gate_summary(project)))
    summary = cold[0][1]
    selected, generated = summary["counts"]["selected"], summary["counts"]["mutmut_generated"]
    rows, data = [], {"selected": selected, "mutmut_generated": generated,
                      "gate_generated": summary["counts"]["gate_generated"], "runs": {}}
    for label, runs in (("cold", cold), ("warm", warm)):
        seconds = [r.seconds for r, _ in runs]
        mutant_phase = [s["timings"].get("mutants", 0.0) for _, s in runs]
        tested = [s["counts"]["selected"] - s["counts"]["cached"] for _, s in runs]
        rate = median([t / m for t, m in zip(tested, mutant_phase) if m]) if any(mutant_phase) else 0.0
        rows.append([label, median(seconds), f"{min(seconds):.1f}-{max(seconds):.1f}", tested[0], rate,
                     max(r.peak_rss_mb for r, _ in runs), max(r.peak_pss_mb for r, _ in runs)])
        data["runs"][label] = {"seconds": seconds, "median_seconds": median(seconds), "mutants_tested": tested,
                               "mutants_per_second_of_mutant_phase": rate,
                               "timings": [s["timings"] for _, s in runs],
                               "peak_rss_mb": [r.peak_rss_mb for r, _ in runs],
                               "peak_pss_mb": [r.peak_pss_mb for r, _ in runs]}
    print(f"gate on shardengine: {selected} mutants selected of {generated} mutmut makes "
          f"(+{summary['counts']['gate_generated']} from the gate's operators), {args.repeat} runs each")
    report("gate_full", ["run", "median s", "range s", "mutants tested", "mutants/s", "peak RSS MB",
                         "peak PSS MB"], rows, data)


if __name__ == "__main__":
    main()
