"""The wire codec: every message round-trips, and a message that does not have the shape its
reader expects is an error naming the field, the kind and the format, never a default."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from gate.wire import codec
from gate.wire.codec import WireError


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Inner:
    name: str
    weight: float


@dataclass(frozen=True)
class Outer:
    count: int
    colour: Colour
    inners: tuple[Inner, ...]
    by_name: dict[str, Inner]
    maybe: str | None
    raw: Any
    flags: list[bool] = field(default_factory=list)


VALUE = Outer(count=3, colour=Colour.BLUE, inners=(Inner("a", 1.5), Inner("b", 2.0)),
              by_name={"c": Inner("c", 0.25)}, maybe=None, raw={"free": [1, "x"]}, flags=[True, False])


def test_a_message_round_trips_with_its_kind_and_format():
    text = codec.dumps(VALUE, 7)
    data = json.loads(text)
    assert (data["kind"], data["format"]) == ("Outer", 7)
    assert codec.loads(Outer, text, 7) == VALUE


def test_an_integer_reads_as_a_float_where_a_float_is_declared():
    data = {"kind": "Inner", "format": 1, "name": "a", "weight": 2}
    value = codec.from_data(Inner, data, 1)
    assert value == Inner("a", 2.0) and isinstance(value.weight, float)


def _tampered(change) -> str:
    data = json.loads(codec.dumps(VALUE, 7))
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(counts=d.pop("count")), "Outer (format 7): unknown field 'counts'"),
    (lambda d: d.pop("maybe"), "Outer (format 7): missing field 'maybe'"),
    (lambda d: d["inners"][1].update(label=d["inners"][1].pop("name")), "Outer (format 7).inners[1]: unknown field 'label'"),
    (lambda d: d["by_name"]["c"].pop("weight"), "Outer (format 7).by_name['c']: missing field 'weight'"),
    (lambda d: d.update(count="3"), "Outer (format 7).count: expected int, got str"),
    (lambda d: d.update(count=True), "Outer (format 7).count: expected int, got a boolean"),
    (lambda d: d.update(colour="green"), "Outer (format 7).colour: 'green' is not a Colour"),
    (lambda d: d.update(inners={}), "Outer (format 7).inners: expected a list, got dict"),
    (lambda d: d.update(format=6), "Outer: format 6, but this gate reads format 7"),
    (lambda d: d.update(kind="Inner"), "expected a Outer message (format 7), got kind 'Inner'"),
])
def test_a_message_of_the_wrong_shape_names_what_is_wrong(change, message):
    with pytest.raises(WireError) as info:
        codec.loads(Outer, _tampered(change), 7)
    assert str(info.value) == message


def test_text_that_is_not_json_is_a_wire_error():
    with pytest.raises(WireError, match=r"^Outer \(format 7\): not JSON"):
        codec.loads(Outer, "{not json", 7)


def test_a_wire_error_is_an_infrastructure_failure():
    from gate.errors import InfrastructureError
    from gate.verdict import ExitCode
    assert issubclass(WireError, InfrastructureError) and WireError.exit_code is ExitCode.INFRASTRUCTURE
