"""The gate's pytest plugin for the baseline run (`-p gate.steps.baseline_plugin`).

It runs the suite the way mutmut's workers will: once the collection is done, whatever it
imported (torch, the code, the tests) is frozen out of the garbage collector (`gc.freeze`), as
the fork server does before it forks a worker. A suite that collects garbage often (an engine's
out-of-memory recovery, leak checks) would otherwise walk all of torch at every collection.

For a baseline split across processes, each shard collects the whole suite and keeps its share,
`GATE_SHARD` = `k/n` (1-based). Shares are whole test classes, or the class-less tests of a
module, so that class and module fixtures are set up in one shard only; they are balanced by the
last baseline's durations
(`GATE_SHARD_DURATIONS`, a JSON file of node id -> seconds; a test it does not know counts as
`UNKNOWN_SECONDS`). Every shard computes the same split from the same collection."""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

import pytest

UNKNOWN_SECONDS = 0.1


def pytest_collection_finish(session) -> None:
    gc.collect()
    gc.freeze()


@pytest.hookimpl(trylast=True)  # after -m, -k and every other plugin chose the items
def pytest_collection_modifyitems(config, items) -> None:
    spec = os.environ.get("GATE_SHARD")
    if not spec:
        return
    k, n = (int(part) for part in spec.split("/"))
    durations = _durations(os.environ.get("GATE_SHARD_DURATIONS"))
    groups: dict[str, float] = {}
    for item in items:
        group = _group(item)
        groups[group] = groups.get(group, 0.0) + durations.get(item.nodeid, UNKNOWN_SECONDS)
    loads, owner = [0.0] * n, {}
    for group in sorted(groups, key=lambda g: (-groups[g], g)):
        share = min(range(n), key=lambda i: (loads[i], i))
        owner[group] = share
        loads[share] += groups[group]
    kept = [item for item in items if owner[_group(item)] == k - 1]
    dropped = [item for item in items if owner[_group(item)] != k - 1]
    items[:] = kept
    if dropped:
        config.hook.pytest_deselected(items=dropped)


def _group(item) -> str:
    file = item.nodeid.split("::", 1)[0]
    cls = getattr(item, "cls", None)
    return f"{file}::{cls.__qualname__}" if cls is not None else file


def _durations(path: str | None) -> dict[str, float]:
    if not path:
        return {}
    try:
        return {str(k): float(v) for k, v in json.loads(Path(path).read_text()).items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}
