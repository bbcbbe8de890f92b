"""The gate's error-handling operators, one test each, on the `operators` fixture: each makes the
expected mutant, a weak suite lets it survive (the gate exits 1 and names it), a good suite kills it."""

from __future__ import annotations

import pytest

from gate.operators import OPERATORS
from tests.gate.conftest import copy_fixture, run_gate

RUNNER = "ops/runner.py"

OOM_HANDLER = ('        except OutOfMemory:\n            self.oom_count += 1\n'
               '            logger.error("out of memory on step %s", x)\n            self.release()\n            return None')
BACKEND_HANDLER = '        except BackendError as exc:\n            raise RuntimeError("backend failed") from exc'

# operator -> (the original lines, the replacement) of one mutant it must make
EXPECTED = {
    "swallow": ('            self.calls.append("invalid")\n            raise', "            pass"),
    "reraise": (OOM_HANDLER.split("\n", 1)[1], "            raise"),
    "clause-delete": (BACKEND_HANDLER, ""),
    "broaden": ("        except OutOfMemory:", "        except RuntimeError:"),
    "narrow": ("        except BackendError as exc:", "        except OutOfMemory as exc:"),
    "unreachable": ("        except ValueError:", "        except ():"),
    "handler-order": (f"{OOM_HANDLER}\n{BACKEND_HANDLER}", f"{BACKEND_HANDLER}\n{OOM_HANDLER}"),
    "cleanup-call-delete": ("            self.release()", "            pass"),
    "reset-delete": ("            self.oom_count += 1", "            pass"),
    "finally-delete": ("            self.calls.append(x)", "            pass"),
    "raise-drop-cause": ('            raise RuntimeError("backend failed") from exc',
                         '            raise RuntimeError("backend failed")'),
    "raise-to-return": ('            raise RuntimeError("backend failed") from exc', "            return None"),
    "bare-raise-to-pass": ("            raise", "            pass"),
    "log-downgrade": ('            logger.error("out of memory on step %s", x)',
                      '            logger.debug("out of memory on step %s", x)'),
}


@pytest.fixture(scope="module")
def strong(tmp_path_factory):
    run = run_gate(copy_fixture("operators", tmp_path_factory.mktemp("strong")))
    assert run.exit_code == 0, run.stdout + run.stderr
    return run


@pytest.fixture(scope="module")
def weak(tmp_path_factory):
    run = run_gate(copy_fixture("operators", tmp_path_factory.mktemp("weak")), "--tests", "tests/test_weak.py")
    assert run.exit_code == 1, run.stdout + run.stderr
    return run


def test_every_operator_has_an_expectation():
    assert set(EXPECTED) == set(OPERATORS)


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_operator_makes_the_expected_mutant(strong, operator):
    original, replacement = EXPECTED[operator]
    made = [(m["original"], m["replacement"]) for m in strong.mutants() if m["operator"] == operator]
    assert (original, replacement) in made, made


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_weak_suite_lets_the_operator_mutant_survive_and_the_gate_names_it(weak, operator):
    survivors = [m for m in weak.mutants() if m["operator"] == operator and m["status"] == "survived"]
    assert survivors
    for m in survivors:
        assert f"survived: {m['label']} ({operator})" in weak.stdout
        assert m["label"] == f"{m['file']}:{m['start']} {m['unit']} #{m['name'].rsplit('__mutmut_', 1)[1]}"


@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_good_suite_kills_every_mutant_of_the_operator(strong, operator):
    statuses = {m["status"] for m in strong.mutants() if m["operator"] == operator}
    assert statuses == {"killed"}


def _mutated_file(project, mutant) -> str:
    lines = (project / mutant["file"]).read_text().splitlines()
    new = lines[:mutant["start"] - 1] + mutant["replacement"].splitlines() + lines[mutant["end"]:]
    return "\n".join(new) + "\n"


def test_every_gate_mutant_compiles(strong):
    gate_mutants = [m for m in strong.mutants() if m["origin"] == "gate"]
    assert len(gate_mutants) >= len(OPERATORS)
    for mutant in gate_mutants:
        compile(_mutated_file(strong.project, mutant), mutant["name"], "exec")


def test_no_mutant_duplicates_another(strong):
    texts = {}
    for mutant in strong.mutants():
        text = _mutated_file(strong.project, mutant)
        assert text not in texts, f"{mutant['name']} ({mutant['operator']}) repeats {texts.get(text)}"
        texts[text] = f"{mutant['name']} ({mutant['operator']})"
