"""`--changed` after a one-function change to an error handler, end to end as pre-commit runs it
(`pre-commit run gate-changed` on a staged change), after a full gate has run once.

    python bench/incremental.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

from common import PYTHON, fresh_copy, gate_summary, median, report, timed

ENGINE = "shardengine/engine.py"
ORIGINAL = "        self.out_of_memory_count += 1\n"
# a new comment each time: a change the gate has never seen, so nothing of it is cached
CHANGED = "        self.out_of_memory_count += 1  # one more out-of-memory error survived ({})\n"


def git(project, *args):
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    project = fresh_copy("incremental", git=True)
    git(project, "config", "user.email", "bench@example.com")
    git(project, "config", "user.name", "bench")
    full = timed([PYTHON, "-m", "gate", "-q"], project)
    assert full.returncode == 0, full.stdout[-3000:]
    runs, summaries = [], []
    env = {"PATH": f"{Path(PYTHON).parent}{os.pathsep}{os.environ['PATH']}"}  # the hook runs `python`
    for attempt in range(args.repeat):
        git(project, "checkout", "-q", "--", ENGINE)
        path = project / ENGINE
        path.write_text(path.read_text().replace(ORIGINAL, CHANGED.format(attempt)))
        git(project, "add", ENGINE)
        run = timed([PYTHON, "-m", "pre_commit", "run", "gate-changed"], project, env=env)
        assert run.returncode == 0, run.stdout[-3000:]
        runs.append(run)
        summaries.append(gate_summary(project))
        git(project, "reset", "-q", "--", ENGINE)
    seconds = [r.seconds for r in runs]
    tested = summaries[0]["counts"]["selected"]
    report("incremental", ["run", "median s", "range s", "regions", "mutants tested", "peak PSS MB"],
           [["pre-commit gate-changed", median(seconds), f"{min(seconds):.1f}-{max(seconds):.1f}",
             summaries[0]["counts"]["regions"], tested, max(r.peak_pss_mb for r in runs)]],
           {"seconds": seconds, "median_seconds": median(seconds), "mutants": tested,
            "timings": [s["timings"] for s in summaries], "full_run_seconds": full.seconds})


if __name__ == "__main__":
    main()
