"""The gate's wall time on this repository with mutmut's operators only, and with the gate's
error-handling operators added (the default), cold, side by side in one session.

    python bench/operators.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil

from common import PYTHON, fresh_copy, gate_summary, median, report, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    project = fresh_copy("operators")
    policy = project / "mutmut_config.py"
    original = policy.read_text()
    configs = {"mutmut's operators only": original + "\noperators = []\n",
               "with the gate's operators": original}
    results: dict[str, list] = {label: [] for label in configs}
    for _ in range(args.repeat):
        for label, text in configs.items():
            policy.write_text(text)
            shutil.rmtree(project / ".gate", ignore_errors=True)
            run = timed([PYTHON, "-m", "gate", "-q"], project)
            summary = gate_summary(project)
            results[label].append((run.seconds, run.returncode, summary["counts"]["selected"],
                                   summary["by_operator"]))
    rows, data = [], {}
    for label, runs in results.items():
        rows.append([label, runs[0][2], median([r[0] for r in runs]), runs[0][1]])
        data[label] = {"seconds": [r[0] for r in runs], "mutants": runs[0][2], "exit_code": runs[0][1],
                       "by_operator": runs[0][3]}
    report("operators", ["run", "mutants", "median s", "exit"], rows, data)
    print("mutants per operator (with the gate's operators):")
    for operator, counts in sorted(results["with the gate's operators"][0][3].items()):
        print(f"  {operator:<22} {sum(counts.values()):>4}  {counts}")


if __name__ == "__main__":
    main()
