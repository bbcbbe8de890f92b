"""What a mutation changes beyond its diff, decided where it is made (the generate phase):

- nothing the program can do: an equivalent mutant, never shown as a survivor. Trivial compiler
  equivalence (the mutated function compiles to the same code objects, constants included, as the
  original or as a mutant already kept), or an expression with no run-time effect (an
  annotation; the type that `typing.cast` is given);
- only the message of a raised exception (its first positional argument): a message-only mutant,
  kept by default and counted apart (`message_mutants` in the policy turns them off).
"""

from __future__ import annotations

import dis
import inspect
import types
from typing import Any

import libcst as cst

SAME_AS_ORIGINAL = "the same bytecode as the original"
SAME_AS_ANOTHER = "the same bytecode as another mutant"
NO_RUNTIME_EFFECT = "no run-time effect (an annotation, or the type given to typing.cast)"


def bytecode(function_code: str) -> tuple[Any, ...] | None:
    """What the code of one function definition compiles to: its instructions with the constants
    and names they load, its signature, its exception table, its docstring; not line numbers, nor
    constants no instruction loads (dead code the compiler removed leaves them behind). Equal for
    two texts when the compiler makes the same program of both. None if it does not compile."""
    try:
        module = compile(function_code, "<mutant>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    return _shape(module)


def _shape(code: types.CodeType) -> tuple[Any, ...]:
    instructions = tuple((i.opname, _argument(i)) for i in dis.get_instructions(code))
    signature = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount
                                 + bool(code.co_flags & inspect.CO_VARARGS)
                                 + bool(code.co_flags & inspect.CO_VARKEYWORDS)]
    # a function's first constant is its docstring, or None
    docstring = code.co_consts[0] if code.co_consts and isinstance(code.co_consts[0], str) else None
    return (instructions, signature, docstring, code.co_flags, code.co_argcount, code.co_posonlyargcount,
            code.co_kwonlyargcount, code.co_freevars, code.co_cellvars, code.co_exceptiontable, code.co_qualname)


def _argument(instruction: dis.Instruction) -> Any:
    if isinstance(instruction.argval, types.CodeType):
        return _shape(instruction.argval)
    if instruction.opcode in dis.hasconst:
        return _constant(instruction.argval)
    return instruction.argval  # a name, a local, a jump target (an offset), an operator


def _constant(value: Any) -> tuple[str, str]:
    """A constant with its type: 1, 1.0 and True are three programs."""
    return type(value).__name__, repr(value)


def without_runtime_effect(node: cst.CSTNode, mutated: cst.CSTNode, parents: Any) -> bool:
    """Whether the mutation of `node` lies in an annotation, or changes only the type `cast(T, x)`
    is given (in it, or replacing it)."""
    if isinstance(node, cst.Call) and _is_cast(node.func) and isinstance(mutated, cst.Call):
        kept = list(mutated.args)
        if len(kept) == len(node.args) >= 2 and _is_cast(mutated.func):
            return all(_same_arg(a, b) for a, b in zip(kept[1:], node.args[1:]))
    child = node
    while child in parents:
        parent = parents[child]
        if isinstance(parent, cst.Annotation):
            return True
        if isinstance(parent, cst.Arg) and isinstance(parents.get(parent), cst.Call):
            call = parents[parent]
            if _is_cast(call.func) and call.args and call.args[0] is parent:
                return True
        child = parent
    return False


def message_only(original: cst.CSTNode, mutated: cst.CSTNode, parents: Any) -> bool:
    """Whether the mutation changes only the message of a raised exception: it lies in the first
    positional argument of the call a `raise` raises, or removes that argument (or makes it None)."""
    if isinstance(original, cst.Call) and _raised(original, parents):
        return _message_removed(original, mutated)
    child = original
    while child in parents:
        parent = parents[child]
        if isinstance(parent, cst.Arg) and isinstance(parents.get(parent), cst.Call):
            call = parents[parent]
            return _raised(call, parents) and _first_positional(call) is parent
        if isinstance(parent, (cst.BaseSmallStatement, cst.BaseCompoundStatement)):
            return False
        child = parent
    return False


def _message_removed(original: cst.Call, mutated: cst.CSTNode) -> bool:
    """`raise E(message, rest)` made `raise E(rest)` or `raise E(None, rest)`: the rest unchanged."""
    first = _first_positional(original)
    if first is None or not isinstance(mutated, cst.Call):
        return False
    rest = [a for a in original.args if a is not first]
    kept = list(mutated.args)
    if len(kept) == len(rest):
        return all(_same_arg(a, b) for a, b in zip(kept, rest))
    if len(kept) == len(original.args):
        index = list(original.args).index(first)
        others = [a for i, a in enumerate(kept) if i != index]
        return (isinstance(kept[index].value, cst.Name) and kept[index].value.value == "None"
                and all(_same_arg(a, b) for a, b in zip(others, rest)))
    return False


def _same_arg(a: cst.Arg, b: cst.Arg) -> bool:
    """The same argument, whatever the commas and spaces around it."""
    keyword = (a.keyword.value if a.keyword else None) == (b.keyword.value if b.keyword else None)
    return keyword and a.star == b.star and a.value.deep_equals(b.value)


def _raised(call: cst.Call, parents: Any) -> bool:
    parent = parents.get(call)
    return isinstance(parent, cst.Raise) and parent.exc is call


def _first_positional(call: cst.Call) -> cst.Arg | None:
    for arg in call.args:
        if arg.keyword is None and arg.star == "":
            return arg
    return None


def _is_cast(func: cst.BaseExpression) -> bool:
    return ((isinstance(func, cst.Name) and func.value == "cast")
            or (isinstance(func, cst.Attribute) and func.attr.value == "cast"))
