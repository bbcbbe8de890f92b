"""One frozen `Settings`: defaults, then `[tool.gate]` in pyproject.toml, then flags; plus the policy.

Unknown keys and values of the wrong type are errors that name the setting.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gate import checks
from gate.errors import ConfigError
from gate.policy import Policy, load_policy


@dataclass(frozen=True)
class Option:
    check: Callable[[str, Any], Any]
    """Called with (`[tool.gate] name`, value); returns the value or raises ConfigError."""
    default: Any
    help: str


OPTIONS: dict[str, Option] = {
    "tests": Option(checks.nonempty_str_list, ("tests",), "pytest arguments that select the suite the gate measures"),
    "pytest_args": Option(checks.str_list, (), "extra pytest arguments for every run"),
    "policy_file": Option(checks.text, "mutmut_config.py", "the mutation policy file"),
    "cache_dir": Option(checks.text, ".gate", "where the snapshot, mutmut's mutants/ and cached results live"),
    "reports_dir": Option(checks.text, "reports", "where the reports are written"),
    "max_workers": Option(checks.number(1, integer=True), os.cpu_count() or 1, "mutants tested at once"),
    "timeout_multiplier": Option(checks.number(0, strict=True), 10.0,
                                 "a mutant's time limit is (measured time of its tests + constant) x this"),
    "timeout_constant": Option(checks.number(0), 2.0, "seconds added to the measured time before multiplying"),
    "worker_memory_mb": Option(checks.number(0, integer=True), 4096,
                               "address-space limit of each mutant's worker in MiB (0: none)"),
    "lock_timeout": Option(checks.number(0), 0.0, "seconds to wait for another gate run on this repository"),
    "explain": Option(checks.boolean, True, "explain each survivor: the check its tests lack, and a verified "
                                            "assertion to add"),
    "explain_seconds": Option(checks.optional_number(0), None,
                              "the explain step's budget in seconds (default: 0.3 of a cold run's time before it, at least 10)"),
    "adoption_file": Option(checks.optional_text, None,
                            "the findings the project had when it adopted the gate (`python -m gate adopt`)"),
}


@dataclass(frozen=True)
class Settings:
    root: Path
    guarded_paths: tuple[str, ...]
    policy: Policy
    tests: tuple[str, ...]
    pytest_args: tuple[str, ...]
    policy_file: str
    cache_dir: Path
    reports_dir: Path
    max_workers: int
    timeout_multiplier: float
    timeout_constant: float
    worker_memory_mb: int
    lock_timeout: float
    adoption_file: str | None = None
    """The adoption file, relative to the root (`gate.ratchet`); None: none."""
    explain: bool = True
    explain_seconds: float | None = None
    # what this run does
    only_coverage: bool = False
    list_regions: bool = False
    changed: str | None = None
    """Only regions of functions changed against this git ref; '' means the staged changes."""
    shard: tuple[int, int] | None = None
    """(k, n): run the k-th of n balanced shares of the selected mutants (1-based)."""

    @property
    def pages_dir(self) -> Path:
        """Where this run's pages go: `reports/changed/` for a `--changed` run, which leaves the
        last full run's pages in place; the reports folder for a full run. `summary.json` and
        `gate-result.json`, which CI reads, are always in the reports folder, the latest run's."""
        return self.reports_dir / "changed" if self.changed is not None else self.reports_dir


def load_settings(start: Path, flags: Mapping[str, Any] | None = None) -> Settings:
    """Settings for the project whose root `find_root` finds from `start` (the current folder or
    `--project DIR`): defaults < `[tool.gate]` < `flags` (None means: not given)."""
    start = start.resolve()
    if not start.is_dir():
        raise ConfigError(f"project folder {start} does not exist")
    root, why = find_root(start)
    if root != start:  # a run from a subfolder: say which settings it reads
        print(f"gate: project root {root} ({why})", file=sys.stderr)
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    if "changed" in flags:  # before any work: git's own answer outside a repository is its usage text
        require_git_repository(root)
    table = _read_tool_gate(root / "pyproject.toml")
    values: dict[str, Any] = {}
    for name, option in OPTIONS.items():
        value = flags[name] if name in flags else table.get(name, option.default)
        values[name] = option.check(f"--{name.replace('_', '-')}" if name in flags else f"[tool.gate] {name}", value)

    policy = load_policy(root / values["policy_file"], values["policy_file"])
    guarded = tuple(flags["paths"]) if flags.get("paths") else policy.guarded_paths or _guess_guarded_paths(root)
    for path in guarded:
        if not (root / path).exists():
            raise ConfigError(f"guarded path {path!r} does not exist in {root}")
    run_mode = {k: flags[k] for k in ("only_coverage", "list_regions", "changed", "shard") if k in flags}
    return Settings(
        root=root,
        guarded_paths=guarded,
        policy=policy,
        tests=values["tests"],
        pytest_args=values["pytest_args"],
        policy_file=values["policy_file"],
        cache_dir=(root / values["cache_dir"]).resolve(),
        reports_dir=(root / values["reports_dir"]).resolve(),
        max_workers=values["max_workers"],
        timeout_multiplier=float(values["timeout_multiplier"]),
        timeout_constant=float(values["timeout_constant"]),
        worker_memory_mb=values["worker_memory_mb"],
        lock_timeout=float(values["lock_timeout"]),
        adoption_file=values["adoption_file"],
        explain=values["explain"],
        explain_seconds=None if values["explain_seconds"] is None else float(values["explain_seconds"]),
        **run_mode,
    )


def find_root(start: Path) -> tuple[Path, str]:
    """The project root for a run started in `start`, and why, found upwards as pytest and git do:
    the nearest folder with a `pyproject.toml` that has `[tool.gate]` (or cannot be read: its error
    is then the run's) or a `mutmut_config.py`; else the nearest with a `pyproject.toml`; else the
    git top level; else `start`. The search stops at the git top level: a repository is never
    configured by a file above it."""
    start = start.resolve()
    top = git_toplevel(start)
    chain = [start, *start.parents]
    if top is not None and top in chain:
        chain = chain[:chain.index(top) + 1]
    for folder in chain:
        if _has_tool_gate(folder / "pyproject.toml"):
            return folder, "pyproject.toml with [tool.gate]"
        if (folder / "mutmut_config.py").is_file():
            return folder, "mutmut_config.py"
    for folder in chain:
        if (folder / "pyproject.toml").is_file():
            return folder, "pyproject.toml"
    if top is not None:
        return top, "the git top level"
    return start, "the current folder"


def _has_tool_gate(path: Path) -> bool:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return path.is_file()
    tool = data.get("tool")
    return isinstance(tool, dict) and "gate" in tool


def git_toplevel(folder: Path) -> Path | None:
    """The top level of the git work tree `folder` lies in; None outside one (or without git)."""
    return _rev_parse_toplevel(folder)[0]


def _rev_parse_toplevel(folder: Path) -> tuple[Path | None, str]:
    """The work tree's top level, or None and the first line of git's complaint."""
    try:
        done = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True)
    except OSError as exc:
        return None, str(exc)
    if done.returncode == 0 and done.stdout.strip():
        return Path(done.stdout.strip()).resolve(), ""
    return None, next((line.strip() for line in done.stderr.splitlines() if line.strip()), "")


def require_git_repository(root: Path) -> None:
    """A `ConfigError` in one line unless `root` is in a git work tree `--changed` can diff: outside
    one, git's own answer to `git diff --cached` is its usage text."""
    if shutil.which("git") is None:
        raise ConfigError("--changed needs git, which is not installed")
    top, complaint = _rev_parse_toplevel(root)
    if top is not None:
        return
    if "not a git repository" in complaint or not complaint:
        raise ConfigError(f"--changed needs a git repository: {root} is not inside one")
    raise ConfigError(f"--changed needs a git repository: git cannot read the one at {root}: {complaint}")


def fallback_folder(root: Path, name: str, flag: str | None) -> Path:
    """`reports_dir` or `cache_dir` for a run whose settings failed to load: the flag's, else
    `[tool.gate]`'s where that value is itself valid, else the default. The verdict of such a run
    still has to land where CI reads it."""
    value = flag
    if value is None:
        try:
            value = OPTIONS[name].check(name, _read_tool_gate(root / "pyproject.toml", strict=False)[name])
        except (ConfigError, KeyError, OSError, UnicodeDecodeError):
            value = OPTIONS[name].default
    return (root / value).resolve()


def _read_tool_gate(path: Path, strict: bool = True) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"pyproject.toml: invalid TOML: {exc}") from exc
    table = data.get("tool", {}).get("gate", {})
    if not isinstance(table, dict):
        raise ConfigError("pyproject.toml: [tool.gate] must be a table")
    table = _renamed(table, warn=strict)
    unknown = sorted(set(table) - set(OPTIONS))
    if unknown and strict:
        close = checks.close_match(unknown[0], OPTIONS)
        hint = f"did you mean {close!r}?" if close else f"known: {', '.join(OPTIONS)}"
        raise ConfigError(f"[tool.gate] unknown setting {unknown[0]!r} ({hint})")
    return table


RENAMED = {"baseline_file": "adoption_file"}
"""[tool.gate] settings by their names before 0.2 -> their names now: the old names still work."""


def _renamed(table: dict[str, Any], warn: bool) -> dict[str, Any]:
    table = dict(table)
    for old, new in RENAMED.items():
        if old not in table:
            continue
        if new in table:
            raise ConfigError(f"[tool.gate] sets both {old} and {new}: {old} is {new}'s old name; keep {new}")
        if warn:
            print(f"gate: [tool.gate] {old} is now {new} (the old name still works)", file=sys.stderr)
        table[new] = table.pop(old)
    return table


_NOT_GUARDED = {"tests", "test", "docs", "doc", "bench", "benchmarks", "examples", "scripts", "build", "dist"}


def _guess_guarded_paths(root: Path) -> tuple[str, ...]:
    """Like mutmut: `src/` if there is one, else the top-level packages that are not tests."""
    if (root / "src").is_dir():
        return ("src",)
    packages = sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()
                      and p.name not in _NOT_GUARDED and not p.name.startswith("."))
    if not packages:
        raise ConfigError("no guarded paths: set guarded_paths in mutmut_config.py or pass --paths")
    return tuple(packages)
