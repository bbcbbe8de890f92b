"""What a mutation changes beyond its diff, decided where it is made (the generate phase):

- nothing the program can do: an equivalent mutant, never shown as a survivor. Trivial compiler
  equivalence (the mutated function compiles to the same code objects, constants included, as the
  original or as a mutant already kept), or an expression with no run-time effect (an
  annotation; the type that `typing.cast` is given);
- only the message of a raised exception (a string in its one, textual argument): a message-only mutant,
  kept by default and counted apart (`message_mutants` in the policy turns them off).
"""

from __future__ import annotations

import dis
import inspect
import types
from typing import Any

import libcst as cst
import libcst.matchers as m

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
    instructions = tuple((i.opname, _argument(i, code)) for i in dis.get_instructions(code))
    signature = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount
                                 + bool(code.co_flags & inspect.CO_VARARGS)
                                 + bool(code.co_flags & inspect.CO_VARKEYWORDS)]
    # a function's first constant is its docstring, or None
    docstring = code.co_consts[0] if code.co_consts and isinstance(code.co_consts[0], str) else None
    return (instructions, signature, docstring, code.co_flags, code.co_argcount, code.co_posonlyargcount,
            code.co_kwonlyargcount, code.co_freevars, code.co_cellvars, code.co_exceptiontable, code.co_qualname)


def _argument(instruction: dis.Instruction, code: types.CodeType) -> Any:
    """Every operand the instruction reads, resolved: `dis` gives some none (on 3.11 `KW_NAMES`,
    whose argval is UNKNOWN, points into `co_consts`), so a constant is read from the table itself."""
    if instruction.arg is None:
        return None
    if instruction.opcode in dis.hasconst:
        value = code.co_consts[instruction.arg]
        # by value, not by index: dead code the compiler removed leaves its constants behind
        return _shape(value) if isinstance(value, types.CodeType) else _constant(value)
    # by what it resolves to, not by index (dead code leaves names behind in the table too), with
    # the flags `dis` shows beside the name (3.11's LOAD_GLOBAL pushes a NULL or not); where `dis`
    # resolves nothing, the raw argument
    argval = instruction.arg if instruction.argval is dis.UNKNOWN else instruction.argval
    return argval, instruction.argrepr


def _constant(value: Any) -> tuple[str, str]:
    """A constant with its type: 1, 1.0 and True are three programs."""
    return type(value).__name__, repr(value)


def without_runtime_effect(node: cst.CSTNode, mutated: cst.CSTNode, parents: Any) -> bool:
    """Whether the mutation of `node` lies in an annotation, or changes only the type `cast(T, x)`
    is given (in it, or replacing it)."""
    casts = _typing_casts(_root(node, parents))
    if isinstance(node, cst.Call) and _is_cast(node.func, casts) and isinstance(mutated, cst.Call):
        kept = list(mutated.args)
        if len(kept) == len(node.args) >= 2 and _is_cast(mutated.func, casts) and _inert_type(node.args[0].value):
            return all(_same_arg(a, b) for a, b in zip(kept[1:], node.args[1:]))
    child = node
    while child in parents:
        parent = parents[child]
        if isinstance(parent, cst.Annotation):
            return True
        if isinstance(parent, cst.Arg) and isinstance(parents.get(parent), cst.Call):
            call = parents[parent]
            if _is_cast(call.func, casts) and call.args and call.args[0] is parent:
                return _inert_type(parent.value)
        child = parent
    return False


def message_only(original: cst.CSTNode, mutated: cst.CSTNode, parents: Any) -> bool:
    """Whether the mutation changes only the message of a raised exception: a string in the text
    of the one argument of the call a `raise` raises (`raise E("cannot read " + path)`), or that
    argument removed or made None. An operator, a number or a name there is no message: it can
    change the exception (a TypeError, another errno)."""
    if isinstance(original, cst.Call) and _raised(original, parents):
        return _message_removed(original, mutated)
    if not isinstance(original, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
        return False
    child = original
    while child in parents:
        parent = parents[child]
        if isinstance(parent, cst.Arg) and isinstance(parents.get(parent), cst.Call):
            call = parents[parent]
            return _raised(call, parents) and _message_argument(call) is parent
        if not isinstance(parent, (cst.BinaryOperation, cst.ConcatenatedString, cst.FormattedString,
                                   cst.FormattedStringExpression)):
            return False  # the string feeds something else (a call, a subscript) before the message
        child = parent
    return False


def _message_argument(call: cst.Call) -> cst.Arg | None:
    """The message of `E(message)`: its one argument, positional, a text."""
    if len(call.args) != 1 or call.args[0].keyword is not None or call.args[0].star != "":
        return None
    return call.args[0] if _is_text(call.args[0].value) else None


def _is_text(node: cst.BaseExpression) -> bool:
    if isinstance(node, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
        return True
    return isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add) and (
        _is_text(node.left) or _is_text(node.right))


def _message_removed(original: cst.Call, mutated: cst.CSTNode) -> bool:
    """`raise E(message)` made `raise E()` or `raise E(None)`: the same class, no other argument."""
    message = _message_argument(original)
    if message is None or not isinstance(mutated, cst.Call) or not mutated.func.deep_equals(original.func):
        return False
    if not mutated.args:
        return True
    return (len(mutated.args) == 1 and isinstance(mutated.args[0].value, cst.Name)
            and mutated.args[0].value.value == "None")


def _same_arg(a: cst.Arg, b: cst.Arg) -> bool:
    """The same argument, whatever the commas and spaces around it."""
    keyword = (a.keyword.value if a.keyword else None) == (b.keyword.value if b.keyword else None)
    return keyword and a.star == b.star and a.value.deep_equals(b.value)


def _raised(call: cst.Call, parents: Any) -> bool:
    parent = parents.get(call)
    return isinstance(parent, cst.Raise) and parent.exc is call


TYPING_MODULES = ("typing", "typing_extensions")


def _root(node: cst.CSTNode, parents: Any) -> cst.CSTNode:
    while node in parents:
        node = parents[node]
    return node


_last_casts: list[Any] = []
"""The last module asked about and its answer: the generate phase walks one file after another."""


def _typing_casts(module: cst.CSTNode) -> tuple[frozenset[str], frozenset[str]]:
    """The names that mean `typing.cast` in the module, and the names of the typing modules:
    bound by its top-level imports (`from typing import cast as c`, `import typing as t`) and bound
    by nothing else at its top level (a `def cast` or `cast = ...` there is some other cast)."""
    if _last_casts and _last_casts[0] is module:
        return _last_casts[1]
    casts: set[str] = set()
    modules: set[str] = set()
    rebound: set[str] = set()
    for statement in getattr(module, "body", ()):
        for small in statement.body if isinstance(statement, cst.SimpleStatementLine) else (statement,):
            if isinstance(small, cst.ImportFrom) and not small.relative and small.module is not None \
                    and cst.Module([]).code_for_node(small.module) in TYPING_MODULES \
                    and not isinstance(small.names, cst.ImportStar):
                casts.update(_bound(alias) for alias in small.names if _imported(alias) == "cast")
            elif isinstance(small, cst.Import):
                modules.update(_bound(alias) for alias in small.names if _imported(alias) in TYPING_MODULES)
            else:
                rebound.update(_names_bound_by(small))
    result = frozenset(casts - rebound), frozenset(modules - rebound)
    _last_casts[:] = [module, result]
    return result


def _imported(alias: cst.ImportAlias) -> str:
    return cst.Module([]).code_for_node(alias.name)


def _bound(alias: cst.ImportAlias) -> str:
    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
        return alias.asname.name.value
    return _imported(alias).split(".", 1)[0]


def _names_bound_by(statement: cst.CSTNode) -> set[str]:
    if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
        return {statement.name.value}
    targets: list[cst.CSTNode] = []
    if isinstance(statement, cst.Assign):
        targets = [t.target for t in statement.targets]
    elif isinstance(statement, (cst.AnnAssign, cst.AugAssign)):
        targets = [statement.target]
    names: set[str] = set()
    for target in targets:
        names.update(n.value for n in _walk_names(target))
    if not isinstance(statement, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
        # any other compound statement (an `if` or `try` around imports or definitions): every
        # name it may bind, read as rebinding, so that a doubtful `cast` is never taken for typing's
        names.update(n.value for n in _walk_names(statement))
    return names


def _walk_names(node: cst.CSTNode) -> list[cst.Name]:
    return list(m.findall(node, m.Name()))


def _is_cast(func: cst.BaseExpression, casts: tuple[frozenset[str], frozenset[str]]) -> bool:
    """`cast(...)` or `typing.cast(...)` where the name resolves to `typing.cast` in the module
    (not a project's own `cast`, not `sqlalchemy.cast`, `memoryview.cast` or `ctypes.cast`)."""
    names, modules = casts
    return ((isinstance(func, cst.Name) and func.value in names)
            or (isinstance(func, cst.Attribute) and func.attr.value == "cast"
                and isinstance(func.value, cst.Name) and func.value.value in modules))


def _inert_type(node: cst.BaseExpression) -> bool:
    """A type expression whose evaluation cannot fail or do anything: a string, a dotted name, or
    one subscripted by such expressions (`dict[str, "Model"]`)."""
    if isinstance(node, (cst.SimpleString, cst.Name)):
        return True
    if isinstance(node, cst.Attribute):
        return _inert_type(node.value)
    if isinstance(node, cst.Subscript):
        return _inert_type(node.value) and all(
            isinstance(e.slice, cst.Index) and _inert_type(e.slice.value) for e in node.slice)
    return False
