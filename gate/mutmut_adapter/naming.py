"""mutmut's file and name conventions, as plain values: its folder, the names its trampolines
answer to, how it names a function's copies and their table. Nothing here imports mutmut, so the
gate's own process may read them (the import walls in pyproject.toml keep mutmut out of it);
`internals` re-exports them for the driver's side, and `tests/gate/test_mutmut_compat.py` keeps
each of them equal to what the installed mutmut does."""

from __future__ import annotations

import re

from gate.scenario import Kind, Scenario

MUTANTS_DIR = "mutants"
"""mutmut's folder in the snapshot: its copy of the project, with the mutated files."""
MUTMUT_SIDE_FILES = (".meta", ".spans")
"""mutmut's own files beside each mutated copy (`mutants/<file>.meta`), never project files."""
MUTANT_UNDER_TEST = "MUTANT_UNDER_TEST"
"""The environment variable mutmut's trampolines read the active mutant's name from."""
FORCED_FAIL = "fail"
"""The mutant name mutmut's trampolines answer by raising: every mutated function fails."""
GENERATION = "mutant_generation"
"""The mutant name mutmut sets while it generates (no trampoline runs a mutant)."""
CLEAN_RUN = "gate-clean-run"
"""The gate's own names for its clean runs (`gate-clean-run-3`): names no trampoline knows, so
that every function runs its original."""
ORIGINAL_KEY = "_mutmut_orig"
"""The key of a function's original code in its mutants table."""
COPY_PREFIXES = ("x_", "xǁ")
"""How mutmut's copies of a function begin: `x_f` for a function, `xǁClassǁmethod` for a method."""
MUTANT_SUFFIX = "__mutmut_"
"""What separates a copy's function from its mutant number (`x_f__mutmut_3`, `x_f__mutmut_orig`)."""
TABLE_PREFIX = "mutants_"
"""How the module global that holds a function's mutants begins (`mutants_x_f__mutmut`)."""
TRAMPOLINE_FILES = ("mutmut/mutation/trampoline.py",)
"""Where mutmut's trampolines run: frames a test never sees without mutmut, left out of tracebacks."""

_COPY_NAME = re.compile(r"^(?:x_|xǁ[^ǁ]*ǁ)?(?P<name>.+?)__mutmut_(?:orig|\d+)$")


def function_of(short_name: str) -> str:
    """The mangled function a mutant belongs to: `x_f` for `x_f__mutmut_3` (the part before
    `__mutmut_`); a name without it unchanged."""
    return short_name.rsplit(MUTANT_SUFFIX, 1)[0]


def mutants_table(short_name: str) -> str:
    """The module global that maps a function's mutants (and its original) to their code, as the
    trampoline reads it: `mutants_x_f__mutmut` for `x_f__mutmut_3`."""
    return f"{TABLE_PREFIX}{function_of(short_name)}{MUTANT_SUFFIX.rstrip('_')}"


def plain_function_name(code_name: str) -> str:
    """The name a reader knows for one of mutmut's copies of a function: `method` for
    `xǁEngineǁmethod__mutmut_3` and `xǁEngineǁmethod__mutmut_orig`; any other name unchanged."""
    found = _COPY_NAME.match(code_name)
    return found["name"] if found else code_name


def is_mutmut_global(name: str) -> bool:
    """Whether a module global is one mutmut's copy added (a table or a function's copy)."""
    return name.startswith((TABLE_PREFIX, *COPY_PREFIXES))


def under_test(scenario: Scenario) -> str:
    """The name mutmut's trampolines must see for `scenario` (`MUTANT_UNDER_TEST`): the forced
    failure's `fail`, a clean run's name of its own, the mutant, or none for the probe's original."""
    if scenario.kind is Kind.FORCED_FAILURE:
        return FORCED_FAIL
    if scenario.kind is Kind.CLEAN_RUN:
        return f"{CLEAN_RUN}-{scenario.key}"
    if scenario.kind is Kind.PROBE_ORIGINAL:
        return ""
    return scenario.mutant
