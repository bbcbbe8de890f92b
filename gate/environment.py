"""What of the environment a cached result depends on: the variables the measurement read by name
(`gate.steps.environment_probe` records them in its process), present or absent, with their
values; always the variables read before any plugin runs or by native code, which no Python hook
sees (the interpreter's, pytest's and coverage's own, and those of the numeric and GPU
libraries); and, where the suite could read more than it named (it iterated over the environment
or started a process), every variable but the per-run and per-session ones it never read by name
(a CI run's number or commit, the shell's), which would otherwise make every CI run a cold one."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping

ALWAYS_KEYED = ("PYTHON", "PYTEST_", "COV_", "COVERAGE_", "OMP_", "KMP_", "MKL_", "OPENBLAS_", "GOMP_", "CUDA_",
                "CUBLAS", "CUDNN_", "NCCL_", "NVIDIA_", "TORCH", "PYTORCH_", "LD_", "MALLOC_", "LANG", "LC_", "TZ")
"""Name prefixes of the variables that are keyed whether the suite was seen to read them or not."""

GATE_OWN = ("COVERAGE_FILE", "PYTHONPATH", "HYPOTHESIS_STORAGE_DIRECTORY")
"""What the gate itself sets for the measurement: keyed elsewhere (PYTHONPATH by the interpreter's
environment key) or the gate's own paths."""


PER_RUN = re.compile(r"(OLDPWD|PWD|SHLVL|_|TERM_SESSION_ID|WINDOWID|SSH_\w+|GITHUB_\w+|RUNNER_\w+|CI_\w+"
                     r"|BUILD_(ID|NUMBER|URL|TAG)|\w+_(RUN|JOB|BUILD|PIPELINE|WORKFLOW)_(ID|NUMBER|ATTEMPT|URL))")
"""Variables whose value changes with every CI run or shell, left out of a whole-environment key
unless the suite read them by name."""


def read_key(read: Iterable[str], whole: str | None, environ: Mapping[str, str] | None = None) -> str:
    """A digest of the values (or absence) of the variables a measurement read by name, of those
    `ALWAYS_KEYED`, and when `whole` says why it counts, of every other but the `PER_RUN` ones."""
    environ = os.environ if environ is None else environ
    names = set(read) | {n for n in environ if n.startswith(ALWAYS_KEYED)}
    if whole:
        names |= {n for n in environ if not PER_RUN.fullmatch(n)}
    names -= set(GATE_OWN)
    parts = [f"{name}={environ[name]!r}" if name in environ else f"{name} unset" for name in sorted(names)]
    return hashlib.sha256("\0".join(["whole" if whole else "read", *parts]).encode()).hexdigest()
