"""Same verdicts, counts and reports before and after a change to the gate.

`python bench/compare_runs.py record DIR` runs the gate on the bundled engine and on each fixture
project (as shipped, and with a weakened test or two) and stores what each run wrote, normalized:
its exit code, terminal output, `summary.json`, `gate-result.json` and every report, with the
figures that change from run to run (seconds, dates, paths, run ids) taken out. One worker tests
the mutants, so that which test kills a mutant first does not depend on which worker finished first.
`python bench/compare_runs.py compare DIR` runs the same cases with the gate as it is now and
prints every difference from what DIR holds; it exits 1 when there is one. Record with the old
tree checked out (`git worktree add /tmp/old REV`, then run this file from there) and compare with
the new one. `--only NAME` runs one case; `--no-engine` leaves out the engine (about 40 s).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"

# (case, fixture, {file: [(old, new)]}): the weakenings take out what a test pins, so that the run fails
CASES: list[tuple[str, str, dict[str, list[tuple[str, str]]]]] = [
    ("strong", "strong", {}),
    ("strong-weakened", "strong", {"tests/test_store.py": [("    assert store.failures == 2\n", "")]}),
    ("strong-unentered", "strong", {"tests/test_store.py": [("def test_read_error_counts", "def _read_error_counts"),
                                                            ("def test_failures_accumulate", "def _failures_accumulate")]}),
    ("strong-red", "strong", {"tests/test_store.py": [('assert store.load("k") == "v"', 'assert store.load("k") == "w"')]}),
    ("faults", "faults", {}),
    ("oom", "oom", {}),
    ("operators", "operators", {}),
    ("exceptions", "exceptions", {}),
    ("equivalents", "equivalents", {}),
    ("decorated", "decorated", {}),
    ("incremental", "incremental", {}),
    ("changes", "changes", {}),
]

# keys whose values are timings, dates or ids of one run, or which test happened to kill a mutant
# first (tests run in the order of their measured durations): never part of a verdict
VOLATILE_KEYS = {"killed_by", "killedBy", "statusReason", "first","seconds", "timings", "run", "started", "finished", "duration", "elapsed", "estimated",
                 "cold_seconds", "created", "timestamp", "versions", "durations"}
TEXT_VOLATILE = [
    (re.compile(r"\d+(\.\d+)?\s?(s|ms|seconds?)\b"), "<time>"),
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?"), "<date>"),
    (re.compile(r"\b[0-9a-f]{40}\b"), "<commit>"),
    (re.compile(r"\b0x[0-9a-f]{6,}\b"), "<address>"),
    (re.compile(r'report = \{.*\};</script>'), "report = <mutation.json>;</script>"),
    (re.compile(r"/tmp/pytest-of-[^/\s]+/pytest-\d+"), "<pytest-tmp>"),
    (re.compile(r"\bcoverage\.py v[\d.]+\w*"), "coverage.py <version>"),
    (re.compile(r'"(timeMs|duration|setup|initialRun|mutation)":\s*[\d.]+'), r'"\1": <t>'),
    (re.compile(r'(duration|time)="[\d.]+"'), r'\1="<t>"'),
]
# names a redesign changed on purpose (the gate's format says so): the recorded side reads as renamed
RENAMED = {"baselined": "adopted", "baseline_file": "adoption_file"}
RENAMED_TEXT = [("red-baseline", "red-suite")]
REPORT_FILES = ["summary.json", "gate-result.json", "gate.sarif", "gate-junit.xml", "index.html",
                "mutation/mutation.json", "mutation/index.html"]


def _scrub(value, project: str):
    if isinstance(value, dict):
        # a kill's detail is the first failing test's message, and which test fails first varies
        killed = value.get("status") in ("killed", "Killed")
        return {RENAMED.get(k, k): _scrub(v, project) for k, v in value.items()
                if k not in VOLATILE_KEYS and k != "format_version" and not (killed and k == "detail")}
    if isinstance(value, list):
        items = [_scrub(v, project) for v in value]
        # lists of test ids come in duration order, which varies: compared as sets
        return sorted(items) if all(isinstance(i, str) for i in items) else items
    if isinstance(value, str):
        return _scrub_text(value, project)
    if isinstance(value, float):
        return "<float>"
    return value


def _scrub_text(text: str, project: str) -> str:
    text = text.replace(project, "<project>")
    for old, new in RENAMED_TEXT:
        text = text.replace(old, new)
    for pattern, replacement in TEXT_VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def _project_for(case: str, workdir: Path) -> Path:
    if case == "engine":
        project = workdir / "engine"
        project.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(project)], input=archive, check=True)
        return project
    _, fixture, edits = next(c for c in CASES if c[0] == case)
    project = workdir / case
    shutil.copytree(FIXTURES / fixture, project, ignore=shutil.ignore_patterns("__pycache__", ".gate", "reports"))
    for rel, replacements in edits.items():
        text = (project / rel).read_text()
        for old, new in replacements:
            if old not in text:
                raise SystemExit(f"compare_runs: {old!r} is not in {fixture}/{rel}")
            text = text.replace(old, new)
        (project / rel).write_text(text)
    return project


def run_case(case: str) -> dict[str, str]:
    """What one gate run on `case` wrote, normalized: file name -> text."""
    with tempfile.TemporaryDirectory(prefix=f"compare-{case}-") as tmp:
        project = _project_for(case, Path(tmp))
        done = subprocess.run([sys.executable, "-m", "gate", "--project", str(project), "--no-explain",
                               "--max-workers", "1"],
                              capture_output=True, text=True, cwd=ROOT, timeout=900)
        seen = {"exit": f"{done.returncode}\n", "terminal": _scrub_text(done.stdout, str(project))}
        for name in REPORT_FILES:
            path = project / "reports" / name
            if not path.exists():
                continue
            seen[name] = _normalized(name, path.read_text(), str(project))
        return seen


def _normalized(name: str, text: str, project: str) -> str:
    if name.endswith((".json", ".sarif")):
        return json.dumps(_scrub(json.loads(text), project), indent=1, sort_keys=True)
    return _scrub_text(text, project)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["record", "compare"])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--only", action="append")
    parser.add_argument("--no-engine", action="store_true")
    args = parser.parse_args(argv)
    cases = [c[0] for c in CASES] + ([] if args.no_engine else ["engine"])
    cases = [c for c in cases if not args.only or c in args.only]
    differences = 0
    for case in cases:
        seen = run_case(case)
        folder = args.dir / case
        if args.mode == "record":
            folder.mkdir(parents=True, exist_ok=True)
            for name, text in seen.items():
                (folder / name.replace("/", "__")).write_text(text)
            print(f"{case}: exit {seen['exit'].strip()}, {len(seen)} files recorded")
            continue
        before = {p.name.replace("__", "/"): p.read_text() for p in folder.iterdir()}
        case_diffs = 0
        for name in sorted(set(before) | set(seen)):
            # recorded text is scrubbed again: a pattern added since applies to both sides
            old, new = (_normalized(name, side[name], "<project>") if name in side else "" for side in (before, seen))
            if old != new:
                case_diffs += 1
                print(f"--- {case}/{name} differs")
                diff = difflib.unified_diff(old.splitlines(True), new.splitlines(True), "before", "after", n=1)
                sys.stdout.writelines(line if len(line) < 400 else line[:400] + " ...\n" for line in list(diff)[:60])
        print(f"{case}: exit {seen['exit'].strip()}, {'same' if not case_diffs else f'{case_diffs} files differ'}")
        differences += case_diffs
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
