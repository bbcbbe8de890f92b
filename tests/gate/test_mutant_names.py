"""A mutant's readable name (`Mutant.label`) and the lookup every command that takes a mutant uses
(`gate.result.find_mutant`): mutmut's mangled name is accepted, never required."""

from __future__ import annotations

import pytest

from gate.mutmut_adapter.naming import MUTANT_SUFFIX
from gate.result import Mutant, find_mutant


def mutant(name: str, file: str = "shardengine/engine.py", unit: str = "Engine._recover_from_oom",
           start: int = 367) -> Mutant:
    return Mutant(name=name, file=file, unit=unit, operator="o", origin="gate", start=start, end=start,
                  original="a", replacement="b", diff="")


RECOVER = mutant(f"shardengine.engine.xǁEngineǁ_recover_from_oom{MUTANT_SUFFIX}16")
OTHER_NUMBER = mutant(f"shardengine.engine.xǁEngineǁ_recover_from_oom{MUTANT_SUFFIX}1", start=360)
OTHER_FILE = mutant(f"shardengine.shard.xǁEngineǁ_recover_from_oom{MUTANT_SUFFIX}16", file="shardengine/shard.py")
FUNCTION = mutant(f"shardengine.engine.x_encode{MUTANT_SUFFIX}3", unit="encode", start=40)


def test_the_label_is_file_line_function_and_number():
    assert RECOVER.label == "shardengine/engine.py:367 Engine._recover_from_oom #16"
    assert FUNCTION.label == "shardengine/engine.py:40 encode #3"
    assert RECOVER.number == 16 and FUNCTION.number == 3


@pytest.mark.parametrize("wanted", [
    RECOVER.name,
    RECOVER.label,
    "shardengine/engine.py:367 Engine._recover_from_oom #16",
    "shardengine/engine.py:999 Engine._recover_from_oom #16",  # the line moved since: the number still names it
    "shardengine/engine.py Engine._recover_from_oom#16",
    "  shardengine/engine.py:367   Engine._recover_from_oom   #16 ",
])
def test_each_form_a_person_copies_finds_the_mutant(wanted):
    assert find_mutant([OTHER_NUMBER, OTHER_FILE, RECOVER, FUNCTION], wanted) is RECOVER


def test_a_readable_name_without_its_file_is_enough_when_one_mutant_has_it():
    assert find_mutant([OTHER_NUMBER, RECOVER, FUNCTION], "Engine._recover_from_oom #16") is RECOVER
    assert find_mutant([RECOVER, FUNCTION], "encode #3") is FUNCTION


def test_a_readable_name_two_files_share_asks_for_the_file():
    with pytest.raises(ValueError, match=r"names 2 mutants: shardengine/engine.py:367 .*shardengine/shard.py:367 .*"
                                         "add its file"):
        find_mutant([RECOVER, OTHER_FILE], "Engine._recover_from_oom #16")


@pytest.mark.parametrize("wanted", ["Engine._recover_from_oom #17", "shardengine/other.py Engine._recover_from_oom #16",
                                    "encode", "x_encode__mutmut_99"])
def test_a_name_that_matches_nothing_says_so(wanted):
    with pytest.raises(ValueError, match="no mutant"):
        find_mutant([RECOVER, OTHER_FILE, FUNCTION], wanted)
