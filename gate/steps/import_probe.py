"""A pytest plugin for the baseline run (`-p gate.steps.import_probe`): at the end of the session it
writes where each guarded module was imported from, so that the gate can tell whether the suite
ran the snapshot's code, every module file the suite imported from the working directory (the
support files a cached result depends on), and the environment variables it read
(`gate.steps.environment_probe`, recording from this plugin's import on). `GATE_PROBE_MODULES`
(a JSON list of module names) says which guarded modules, `GATE_PROBE_OUT` where to write."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from gate.steps import environment_probe


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ARG001 (pytest's hook signature)
    out = os.environ.get("GATE_PROBE_OUT")
    if not out:
        return
    names = json.loads(os.environ.get("GATE_PROBE_MODULES", "[]"))
    found = {name: getattr(sys.modules[name], "__file__", None) for name in names if name in sys.modules}
    here = Path.cwd().resolve()
    files = {Path(f).resolve() for m in list(sys.modules.values()) if isinstance(f := getattr(m, "__file__", None), str)}
    local = sorted(f.relative_to(here).as_posix() for f in files if f.is_relative_to(here))
    Path(out).write_text(json.dumps({"guarded": found, "files": local, "environment": environment_probe.recorded()}))
