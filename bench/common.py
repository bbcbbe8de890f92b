"""Shared by the benchmarks: a fresh copy of this repository, timed runs with the peak memory of
the whole process tree, medians, and a small table plus a JSON file per benchmark."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PYTHON = sys.executable


def fresh_copy(name: str, git: bool = False) -> Path:
    """This repository's tracked and untracked files (no caches, no reports) in a new folder."""
    target = Path(tempfile.mkdtemp(prefix=f"bench-{name}-")) / "repo"
    if git:
        subprocess.run(["git", "clone", "-q", str(REPO), str(target)], check=True)
        return target
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for rel in files:
        if (REPO / rel).is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, target / rel)
    return target


@dataclass
class Run:
    seconds: float
    returncode: int
    peak_rss_mb: float
    """The largest sum of the resident sets of the run's processes at one moment (shared pages counted in each)."""
    peak_pss_mb: float
    """The same with shared pages divided among their sharers: the memory the run really held."""
    stdout: str = field(repr=False, default="")


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Run `command`, sampling the memory of it and all its descendants every 50 ms."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    peaks = {"rss": 0.0, "pss": 0.0}

    def sample() -> None:
        while child.poll() is None:
            rss = pss = 0.0
            for pid in _tree(child.pid):
                rss += _proc_kb(pid, "status", "VmRSS")
                pss += _proc_kb(pid, "smaps_rollup", "Pss")
            peaks["rss"], peaks["pss"] = max(peaks["rss"], rss / 1024), max(peaks["pss"], pss / 1024)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    seconds = time.perf_counter() - started
    sampler.join()
    return Run(seconds, child.returncode, round(peaks["rss"]), round(peaks["pss"]), out)


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _proc_kb(pid: int, name: str, key: str) -> float:
    """A `key: N kB` line of /proc/<pid>/<name> (status, smaps_rollup); 0 for a process gone since."""
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def report(name: str, headers: list[str], rows: list[list[object]], data: dict) -> None:
    """Print a table and write `bench/results/<name>.json`."""
    widths = [max(len(str(x)) for x in [h, *(r[i] for r in rows)]) for i, h in enumerate(headers)]
    print("  ".join(str(h).ljust(w) for h, w in zip(headers, widths)))
    for row in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"python": sys.version.split()[0], "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M")}
    (RESULTS / f"{name}.json").write_text(json.dumps({"meta": meta, **data}, indent=1) + "\n")
    print(f"wrote bench/results/{name}.json")


def gate_summary(project: Path) -> dict:
    return json.loads((project / "reports" / "summary.json").read_text())
