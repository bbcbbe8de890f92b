"""The operators' rules on small sources, without running a suite: which mutants they make, and
which they must not make because the mutant could not behave differently (an equivalent mutant)."""

from __future__ import annotations

import sys

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from gate import operators
from gate.steps import exception_types
from gate.steps.regions import regions_of_source
from gate.wire import codec


def gate_mutants(tmp_path, monkeypatch, source: str, resolve: bool = True) -> list[tuple[str, str, str]]:
    """(operator, original code, mutated code) for each mutation the operators propose."""
    name = f"mod_{abs(hash(source))}"
    rel = f"{name}.py"
    (tmp_path / rel).write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    facts = {rel: codec.encode(exception_types._facts(rel))} if resolve else {}
    sys.modules.pop(name, None)
    regions = [(r.start, r.end, r.kind.value) for r in regions_of_source(source, rel, frozenset({"release"}))]
    wrapper = MetadataWrapper(cst.parse_module(source), unsafe_skip_copy=True)
    found = operators.find_mutations(wrapper, wrapper.resolve(PositionProvider), regions,
                                     {"exceptions": facts}, ignored_lines=set(), file=rel)
    code = wrapper.module.code_for_node
    return [(c.operator, code(c.original).strip(), code(c.mutated).strip()) for c in found]


def of(mutants, operator):
    return [(original, mutated) for op, original, mutated in mutants if op == operator]


TORCH_HANDLER = """\
import torch


def run(model):
    try:
        return model()
    except torch.cuda.OutOfMemoryError:
        return None
"""


def test_cuda_oom_broadens_to_runtime_error_then_exception_never_to_its_alias(tmp_path, monkeypatch):
    mutants = gate_mutants(tmp_path, monkeypatch, TORCH_HANDLER)
    assert of(mutants, "broaden") == [("torch.cuda.OutOfMemoryError", "RuntimeError"),
                                       ("torch.cuda.OutOfMemoryError", "Exception")]
    assert all("torch.OutOfMemoryError" not in mutated for _, _, mutated in mutants)
    assert of(mutants, "unreachable") == [("torch.cuda.OutOfMemoryError", "()")]


def test_dropping_a_tuple_member_another_member_covers_is_not_a_mutant(tmp_path, monkeypatch):
    source = "def f(g):\n    try:\n        g()\n    except (OSError, FileNotFoundError):\n        return 1\n"
    narrowings = of(gate_mutants(tmp_path, monkeypatch, source), "narrow")
    # dropping FileNotFoundError catches the same exceptions; dropping OSError does not
    assert ("(OSError, FileNotFoundError)", "FileNotFoundError") in narrowings
    assert ("(OSError, FileNotFoundError)", "OSError") not in narrowings
    # OSError -> FileNotFoundError would leave (FileNotFoundError, FileNotFoundError): a real narrowing
    assert all(mutated != "(OSError, OSError)" for _, mutated in narrowings)


def test_broadening_into_a_type_the_tuple_already_has_is_not_a_mutant(tmp_path, monkeypatch):
    source = "def f(g):\n    try:\n        g()\n    except (RuntimeError, Exception):\n        return 1\n"
    assert ("RuntimeError", "Exception") not in of(gate_mutants(tmp_path, monkeypatch, source), "broaden")
    assert all("(Exception, Exception)" != m for _, _, m in gate_mutants(tmp_path, monkeypatch, source))


def test_handlers_that_cannot_both_match_are_not_swapped(tmp_path, monkeypatch):
    source = ("def f(g):\n    try:\n        g()\n    except KeyError:\n        return 1\n"
              "    except ValueError:\n        return 2\n")
    assert of(gate_mutants(tmp_path, monkeypatch, source), "handler-order") == []


def test_overlapping_handlers_are_swapped(tmp_path, monkeypatch):
    source = ("def f(g):\n    try:\n        g()\n    except KeyError:\n        return 1\n"
              "    except LookupError:\n        return 2\n")
    assert len(of(gate_mutants(tmp_path, monkeypatch, source), "handler-order")) == 1


def test_unresolved_types_get_no_type_changes(tmp_path, monkeypatch):
    mutants = gate_mutants(tmp_path, monkeypatch, TORCH_HANDLER, resolve=False)
    assert {op for op, _, _ in mutants} == {"swallow", "reraise", "unreachable"}


def test_raise_in_an_async_generator_becomes_a_bare_return(tmp_path, monkeypatch):
    source = "async def f(xs):\n    for x in xs:\n        if x < 0:\n            raise ValueError(x)\n        yield x\n"
    assert of(gate_mutants(tmp_path, monkeypatch, source), "raise-to-return") == [("raise ValueError(x)", "return")]


def test_statements_outside_handlers_finally_and_cleanup_are_left_alone(tmp_path, monkeypatch):
    source = ("import logging\nlog = logging.getLogger()\n\n\ndef f(state):\n    state.n = 1\n    log.error('x')\n"
              "    try:\n        state.go()\n    finally:\n        state.n = 0\n\n\ndef release(state):\n"
              "    state.model = None\n")
    mutants = gate_mutants(tmp_path, monkeypatch, source)
    assert of(mutants, "reset-delete") == [("state.n = 0", "pass"), ("state.model = None", "pass")]
    assert of(mutants, "log-downgrade") == []
    assert of(mutants, "cleanup-call-delete") == []

