"""Adopting the gate on a project that already has findings: an adoption file (`adoption_file` in
`[tool.gate]`) lists today's survivors and unentered regions, each with a reason and an expiry
date, so the gate fails on anything new while the old ones are paid off.

`python -m gate adopt` writes it from a full run. A run then fails on every finding not in it,
warns on those in it, fails on an entry past its date, and says when an entry is no longer needed.
An entry names its finding by the fingerprint SARIF's `partialFingerprints` carries (file,
function, operator or rule, the mutated text, and the shape of its region: the handler's own code
and its `try` body's; never a line number), so unrelated edits and moves leave it standing, and a
finding in another region alike never takes it over. Only the gate's own failures (exit 1) can be
adopted: a red suite or an infrastructure failure never."""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gate.errors import ConfigError
from gate.files import write_atomic
from gate.result import GateResult

FORMAT = 2
"""2: a fingerprint holds its region's shape too (`Region.shape`), so format 1's name no finding."""
DEFAULT_DAYS = 90
DEFAULT_REASON = "a finding the project had when it adopted the gate"


@dataclass(frozen=True)
class Entry:
    fingerprint: str
    kind: str
    """`mutant`, or the region rule (`uncovered-handler`, `untaken-branch`, ...)."""
    file: str
    function: str
    what: str
    """The finding as the verdict words it, for the reader of the file."""
    reason: str
    expires: str
    """YYYY-MM-DD: the last day the entry holds."""

    def expired(self, today: datetime.date) -> bool:
        return datetime.date.fromisoformat(self.expires) < today


@dataclass(frozen=True)
class Ratchet:
    file: str
    """The file, as the settings name it."""
    entries: dict[str, Entry]
    today: datetime.date


def load(root: Path, name: str, today: datetime.date | None = None) -> Ratchet:
    """The adoption file `name` of the project in `root`; a missing or malformed one is exit 2."""
    path = root / name
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"adoption_file {name} does not exist: write it with `python -m gate adopt`") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"adoption_file {name} cannot be read: {exc}") from None
    if isinstance(data, dict) and data.get("format") == 1:
        raise ConfigError(f"adoption_file {name} was written by an older gate (format 1), whose fingerprints name "
                          "no finding now: rewrite it with `python -m gate adopt`")
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), list):
        raise ConfigError(f"adoption_file {name} is not a gate adoption file (format {FORMAT}, a list of entries)")
    entries = {}
    for index, raw in enumerate(data["entries"], 1):
        entry = _entry(name, index, raw)
        if entry.fingerprint in entries:
            raise ConfigError(f"adoption_file {name}, entry {index}: the same fingerprint as an earlier entry")
        entries[entry.fingerprint] = entry
    return Ratchet(name, entries, today or datetime.date.today())


def _entry(name: str, index: int, raw: Any) -> Entry:
    where = f"adoption_file {name}, entry {index}"
    fields = {f: raw.get(f) for f in Entry.__dataclass_fields__} if isinstance(raw, dict) else {}
    missing = [f for f, v in fields.items() if not isinstance(v, str) or not v.strip()] if fields else ["all"]
    if missing:
        raise ConfigError(f"{where}: needs a non-empty {missing[0]}")
    try:
        datetime.date.fromisoformat(fields["expires"])
    except ValueError:
        raise ConfigError(f"{where}: expires must be a date (YYYY-MM-DD), got {fields['expires']!r}") from None
    return Entry(**fields)


@dataclass(frozen=True)
class Adoptable:
    """One finding the adoption file can hold: what `write` needs of it."""

    fingerprint: str
    kind: str
    file: str
    function: str
    what: str


def write(path: Path, findings: list[Adoptable], previous: Ratchet | None, reason: str, expires: str
          ) -> tuple[int, int, int]:
    """Write every finding into the adoption file at `path`: an entry already there keeps its reason and
    date, unless the date has passed; a new or expired one gets `reason` and `expires` (rewriting
    the file is the deliberate renewal). Returns (kept, new or renewed, dropped)."""
    old = {fp: e for fp, e in (previous.entries if previous else {}).items()
           if previous is None or not e.expired(previous.today)}
    entries = [old.get(f.fingerprint) or Entry(f.fingerprint, f.kind, f.file, f.function, f.what, reason, expires)
               for f in findings]
    kept = sum(1 for f in findings if f.fingerprint in old)
    dropped = len(set(previous.entries if previous else {}) - {f.fingerprint for f in findings})
    write_atomic(path, json.dumps({"format": FORMAT, "entries": [asdict(e) for e in entries]}, indent=1) + "\n")
    return kept, len(entries) - kept, dropped


def default_expiry(today: datetime.date | None = None) -> str:
    return ((today or datetime.date.today()) + datetime.timedelta(days=DEFAULT_DAYS)).isoformat()


def adoptable_of(result: GateResult) -> list[Adoptable]:
    """The findings of a run that the adoption file can hold: its failing mutants and its regions' problems
    that are gaps in the tests (exit 1), held or not."""
    found = [Adoptable(m.finding_id, "mutant", m.file, m.unit,
                       f"{m.failing}: {m.operator} in {m.unit} ({m.file}): {' '.join(m.original.split())} -> "
                       f"{' '.join(m.replacement.split())}")
             for m in result.mutants if m.failing and m.finding_id]
    found += [Adoptable(p.finding_id, p.rule, r.region.file, r.region.function, p.message)
              for r in result.regions for p in r.problems if not p.infrastructure]
    return found
