"""Speed levers, for benchmarks only: `GATE_LEVERS_OFF=a,b` switches each named one off, so that
`bench/levers.py` can measure what it buys. Read here and nowhere else (the mutmut driver is a
subprocess, so an environment variable reaches it where patching would not). A run with none off
is the product; every lever off still gives the same verdict, only slower."""

from __future__ import annotations

import os

from gate.errors import ConfigError

LEVERS = {
    "preload": "the fork server imports torch, the code and the tests once, for every worker",
    "freeze": "gc.freeze in the fork server, so a worker's gc.collect skips what the server imported",
    "kept-session": "each worker runs its tests in the fork server's collected pytest session",
    "line-tests": "a mutant runs the tests that execute its lines, not all that reach its function",
    "killer-first": "the test that killed a mutant (or its function's others) last runs first",
    "measurement-split": "the measurement splits across processes where that pays",
}


def levers_off() -> set[str]:
    """The levers `GATE_LEVERS_OFF` switches off; an unknown name is a configuration error."""
    names = {name.strip() for name in os.environ.get("GATE_LEVERS_OFF", "").split(",") if name.strip()}
    unknown = sorted(names - set(LEVERS))
    if unknown:
        raise ConfigError(f"GATE_LEVERS_OFF names unknown levers {', '.join(unknown)} (known: {', '.join(LEVERS)})")
    return names
