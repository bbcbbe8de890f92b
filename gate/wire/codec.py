"""One strict JSON codec for every value that crosses between the gate's processes.

A message is a frozen dataclass. `dumps(message, fmt)` writes it as one JSON object with its kind
(the class name) and its boundary's format number; `loads(cls, text, fmt)` reads it back, checking
both, and builds every field from its type annotation: a missing field, a field the class does not
have, or a value of the wrong type is a `WireError` that names the field, the kind and the format.
Nothing is ever filled in by default on the reading side: a renamed key fails loudly instead of
reading as "nothing there".

Supported field types: str, int, float, bool, None, `X | None`, `tuple[X, ...]`, `list[X]`,
`dict[str, X]`, an `enum.Enum` (by value), another dataclass (nested, without kind or format) and
`Any` (passed through as JSON)."""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from gate.errors import InfrastructureError
from gate.files import write_atomic

T = TypeVar("T")


class WireError(InfrastructureError):
    """A message between the gate's processes that does not have the shape its reader expects."""

    slug = "wire"


class OtherFormat(WireError):
    """A message of another kind or format than its reader's: what a file an older gate wrote reads
    as. A cache may take it for a miss; a live boundary may not."""

    slug = "wire-format"


def encode(value: Any) -> Any:
    """A dataclass (or a value inside one) as plain JSON data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def dumps(message: Any, fmt: int) -> str:
    """`message` as one line of JSON, stamped with its kind and its boundary's format."""
    return json.dumps({"kind": type(message).__name__, "format": fmt, **encode(message)})


def loads(cls: type[T], text: str, fmt: int) -> T:
    """The `cls` message in `text`, written by `dumps(..., fmt)`; anything else is a `WireError`."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise WireError(f"{cls.__name__} (format {fmt}): not JSON ({exc})") from None
    return from_data(cls, data, fmt)


def from_data(cls: type[T], data: Any, fmt: int) -> T:
    """The `cls` message in already-parsed JSON `data` (see `loads`)."""
    if not isinstance(data, dict):
        raise WireError(f"{cls.__name__} (format {fmt}): expected an object, got {type(data).__name__}")
    kind, version = data.get("kind"), data.get("format")
    if kind != cls.__name__:
        raise OtherFormat(f"expected a {cls.__name__} message (format {fmt}), got kind {kind!r}")
    if version != fmt:
        raise OtherFormat(f"{cls.__name__}: format {version!r}, but this gate reads format {fmt}")
    body = {k: v for k, v in data.items() if k not in ("kind", "format")}
    return _decode(cls, body, f"{cls.__name__} (format {fmt})")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(annotation: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return value
    if dataclasses.is_dataclass(annotation):
        return _decode_dataclass(annotation, value, where)
    if origin in (typing.Union, types.UnionType):
        return _decode_union(args, value, where)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        try:
            return annotation(value)
        except ValueError:
            raise WireError(f"{where}: {value!r} is not a {annotation.__name__}") from None
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise WireError(f"{where}: expected a list, got {type(value).__name__}")
        item = args[0] if args else Any
        items = [_decode(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise WireError(f"{where}: expected an object, got {type(value).__name__}")
        return {k: _decode(args[1] if args else Any, v, f"{where}[{k!r}]") for k, v in value.items()}
    return _decode_scalar(annotation, value, where)


def _decode_dataclass(cls: type, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise WireError(f"{where}: expected an object, got {type(value).__name__}")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - fields)
    if unknown:
        raise WireError(f"{where}: unknown field {unknown[0]!r}")
    missing = sorted(fields - set(value))
    if missing:
        raise WireError(f"{where}: missing field {missing[0]!r}")
    hints = _hints(cls)
    return cls(**{name: _decode(hints[name], value[name], f"{where}.{name}") for name in sorted(fields)})


def _decode_union(options: tuple[Any, ...], value: Any, where: str) -> Any:
    if value is None and type(None) in options:
        return None
    problems = []
    for option in (o for o in options if o is not type(None)):
        try:
            return _decode(option, value, where)
        except WireError as exc:
            problems.append(str(exc))
    raise WireError(problems[0] if len(problems) == 1 else f"{where}: {value!r} fits none of its types")


def _decode_scalar(annotation: Any, value: Any, where: str) -> Any:
    if annotation in (type(None), None):
        if value is not None:
            raise WireError(f"{where}: expected null, got {value!r}")
        return None
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float) and isinstance(value, bool):
        raise WireError(f"{where}: expected {annotation.__name__}, got a boolean")
    if not isinstance(value, annotation):
        raise WireError(f"{where}: expected {annotation.__name__}, got {type(value).__name__}")
    return value


def write(path: Path, message: Any, fmt: int) -> None:
    """`message` to the file at `path`, whole or not at all (a reader never sees half of it)."""
    write_atomic(path, dumps(message, fmt) + "\n")


def read(cls: type[T], path: Path, fmt: int) -> T:
    """The `cls` message in the file at `path`; a file that is missing or unreadable is a `WireError`."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise WireError(f"{cls.__name__} (format {fmt}): {path.name} could not be read ({exc.strerror})") from None
    return loads(cls, text, fmt)
