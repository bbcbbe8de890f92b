"""The exception-type child's boundary (`python -P -m gate.steps.exception_types FILE...`): it
imports each guarded module and prints one `TypesReport` line (after `MARKER`) of what it found.
The gate keeps the last report in a `TypesCache` file.

Format history:
1. the first typed format (before it: an untyped JSON line, "facts format 2").
"""

from __future__ import annotations

from dataclasses import dataclass

FORMAT = 1
MARKER = "@@gate-types "


@dataclass(frozen=True)
class ClassInfo:
    mro: tuple[str, ...]
    """The class's method resolution order, as `module.qualname` ids."""


@dataclass(frozen=True)
class ModuleTypes:
    """The exception facts of one guarded module, which the type-changing operators use."""

    exprs: dict[str, str]
    """Each caught or raised type expression of the file -> the class id it resolves to."""
    classes: dict[str, ClassInfo]
    names: dict[str, str]
    """Class id -> an expression that names the class inside the module."""
    named_in_file: tuple[str, ...]
    unresolved: dict[str, str]
    """Each caught type expression that could not be resolved -> why."""


@dataclass(frozen=True)
class TypesReport:
    resolved: dict[str, ModuleTypes]
    failed: dict[str, str]
    """File -> why it could not be imported."""


@dataclass(frozen=True)
class TypesCache:
    key: str
    files: tuple[str, ...]
    report: TypesReport
