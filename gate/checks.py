"""Value checks shared by `[tool.gate]` and `mutmut_config.py`; each error names where the value came from."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

from gate.errors import ConfigError


def str_list(where: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(
            isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where} must be a list of non-empty strings, got {value!r}")
    return tuple(value)


def nonempty_str_list(where: str, value: Any) -> tuple[str, ...]:
    values = str_list(where, value)
    if not values:
        raise ConfigError(f"{where} must not be empty")
    return values


def text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be a non-empty string, got {value!r}")
    return value


def optional_text(where: str, value: Any) -> str | None:
    return None if value is None else text(where, value)


def boolean(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be True or False, got {value!r}")
    return value


def choice(choices: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(where: str, value: Any) -> str:
        if value not in choices:
            raise ConfigError(f"{where} must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    return check


def number(minimum: float, *, integer: bool = False, strict: bool = False) -> Callable[[str, Any], Any]:
    def check(where: str, value: Any) -> Any:
        kinds = (int,) if integer else (int, float)
        ok = isinstance(value, kinds) and not isinstance(value, bool)
        if not ok or value < minimum or (strict and value == minimum):
            bound = f"> {minimum}" if strict else f">= {minimum}"
            kind = "an integer" if integer else "a number"
            raise ConfigError(f"{where} must be {kind} {bound}, got {value!r}")
        return value
    return check


def optional_number(minimum: float) -> Callable[[str, Any], Any]:
    check = number(minimum)
    return lambda where, value: None if value is None else check(where, value)


def reason_map(where: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) and v.strip() for k, v in value.items()):
        raise ConfigError(f"{where} must map 'file:function' to a non-empty reason, got {value!r}")
    return dict(value)


def close_match(name: str, known: Iterable[str], cutoff: float = 0.8) -> str | None:
    """The known name `name` is likeliest a misspelling of (`test` -> `tests`), or None: the one
    "did you mean" of `[tool.gate]`, `mutmut_config.py` and the flags."""
    found = difflib.get_close_matches(name, list(known), n=1, cutoff=cutoff)
    return found[0] if found else None
