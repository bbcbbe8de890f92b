"""The full gate on this repository, cold (no cache) and warm (nothing changed).

    python bench/gate_full.py [--repeat 3]

Reports the median wall time of each, the mutants selected out of those mutmut's operators make,
mutants per second and the peak memory of the whole process tree (RSS sum and PSS), the phases of
the cold runs (the coverage step, generation, mutants), and the floor: what no gate can go under
on this machine, the suite's own run under coverage (the measurement) plus, over the workers, the
sum over mutants of their killing test's time in the measurement. Each run works on a fresh copy of
the repository, so the user's `.gate/` is never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil

from common import PYTHON, fresh_copy, gate_summary, median, report, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    project = fresh_copy("gate-full")
    command = [PYTHON, "-m", "gate", "-q"]
    cold, warm, floors = [], [], []
    for _ in range(args.repeat):
        shutil.rmtree(project / ".gate", ignore_errors=True)
        run = timed(command, project)
        assert run.returncode == 0, run.stdout[-2000:]
        cold.append((run, gate_summary(project)))
        floors.append(floor(project))
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
    phases = {name: median([s["timings"].get(name, 0.0) for _, s in cold])
              for name in ("exception types", "generate", "coverage", "mutants")}
    print("cold phases (median s; types and generation run beside the coverage step): "
          + ", ".join(f"{name} {value}" for name, value in phases.items()))
    floor_s = median([f["seconds"] for f in floors])
    cold_s = median([r.seconds for r, _ in cold])
    print(f"floor: {floor_s} s (measurement {median([f['measurement'] for f in floors])} s + killing tests "
          f"{median([f['killing_tests'] for f in floors])} s over {floors[0]['workers']} workers); "
          f"cold / floor = {round(cold_s / floor_s, 2)}")
    data.update(cold_phases=phases, floor=floors, cold_over_floor=round(cold_s / floor_s, 2))
    report("gate_full", ["run", "median s", "range s", "mutants tested", "mutants/s", "peak RSS MB",
                         "peak PSS MB"], rows, data)


def floor(project) -> dict:
    """The least a run could take: the measurement it measured, plus each mutant's killing test (its
    time in the measurement; a survivor would need all its tests) shared over the workers."""
    result = json.loads((project / "reports" / "gate-result.json").read_text())
    measured = json.loads((project / ".gate" / "coverage" / "measurement.json").read_text())
    durations = measured["durations"]
    killing = sum(durations.get(m["killed_by"], 0.0) if m["killed_by"] else
                  sum(durations.get(t, 0.0) for t in m["tests"]) for m in result["mutants"])
    workers = os.cpu_count() or 1  # the gate's default max_workers
    return {"seconds": round(measured["seconds"] + killing / workers, 2), "measurement": round(measured["seconds"], 2),
            "killing_tests": round(killing, 2), "workers": workers}


if __name__ == "__main__":
    main()
