"""The region finder agrees with mutmut on what it can mutate: a region in a function mutmut
does not copy is reported as not mutated, never silently left without mutants."""

from __future__ import annotations

from gate.mutmut_adapter.client import unmutatable_reason
from gate.steps.regions import regions_of_source, unit_spans

SOURCE = '''\
import sys

if sys.platform:
    def conditional():
        try:
            pass
        except ValueError:
            raise

try:
    import json
except ImportError:
    json = None


def top():
    class Local:
        def method(self):
            raise KeyError
    try:
        pass
    except OSError:
        return None


class Outer:
    class Inner:
        def method(self):
            raise LookupError

    def method(self):
        raise TypeError
'''


def reasons() -> dict[int, tuple[str | None, str | None]]:
    return {r.start: (r.unit, unmutatable_reason(r, [])) for r in regions_of_source(SOURCE, "m.py")}


def test_a_function_defined_in_an_if_block_is_not_mutated_and_says_why():
    found = reasons()
    assert found[7] == ("conditional", "conditional is defined inside a block (if, try, with, for), "
                                       "where mutmut does not trampoline it")
    assert found[8][1] == found[7][1]


def test_module_level_code_and_nested_classes_are_not_mutated():
    found = reasons()
    assert found[12] == (None, "outside a function (module or class body); mutmut mutates functions only")
    assert found[19] == ("top", "in a class nested in a function, whose methods mutmut does not trampoline")
    assert found[29] == (None, "in a class nested in a class, whose methods mutmut does not trampoline")


def test_top_level_functions_and_methods_are_mutated():
    found = reasons()
    assert found[22] == ("top", None)
    assert found[32] == ("Outer.method", None)


def test_the_finder_and_unit_spans_name_the_same_units():
    units = {name for name, _, _ in unit_spans(SOURCE)}
    assert units == {"top", "Outer.method"}
    mutable = {r.unit for r in regions_of_source(SOURCE, "m.py") if unmutatable_reason(r, []) is None}
    assert mutable <= units

