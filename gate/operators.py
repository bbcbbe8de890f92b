"""The gate's error-handling mutation operators, as pure libcst tree transforms.

mutmut 3 cannot delete a statement, drop a `raise` or change what an `except` catches, so it is
blind to the faults that matter most on error paths. Each operator here proposes
(original node, mutated node) pairs, only inside the error-handling regions it is given;
`gate.mutmut_adapter.mutate` turns them into mutmut mutants (its trampolines, its cache, its runner).

Operators that change a caught type need the exception hierarchy, which `gate.steps.exception_types`
resolves by importing the module; without it they stay silent rather than guess, because a
mutant that cannot change behaviour is a survivor no test can kill.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import libcst as cst

OPERATORS = {
    "swallow": "the handler body becomes `pass`",
    "reraise": "the handler body becomes a bare `raise`",
    "clause-delete": "one `except` clause of several is removed",
    "broaden": "the caught type moves up its hierarchy (up to Exception)",
    "narrow": "the caught type moves down its hierarchy, or loses one type of a tuple",
    "unreachable": "the caught type becomes `()`, which nothing matches",
    "handler-order": "two adjacent overlapping handlers swap",
    "cleanup-call-delete": "a call statement in a handler, finally or cleanup function becomes `pass`",
    "reset-delete": "an assignment in a handler, finally or cleanup function becomes `pass`",
    "finally-delete": "the finally body becomes `pass`",
    "raise-drop-cause": "`raise X from e` loses `from e`",
    "raise-to-return": "`raise X` becomes `return None`",
    "bare-raise-to-pass": "a bare `raise` becomes `pass`",
    "log-downgrade": "`logger.error/exception/critical` becomes `logger.debug`",
}

LOG_LEVELS_DOWNGRADED = {"error", "exception", "critical"}
MAX_NARROWINGS = 2
EXCEPTION = "builtins.Exception"


@dataclass(frozen=True)
class Candidate:
    operator: str
    original: cst.CSTNode
    mutated: cst.CSTNode


@dataclass(frozen=True)
class TypeInfo:
    """One resolved exception class: its identity and its MRO."""

    id: str
    mro: tuple[str, ...]


class Hierarchy:
    """The exception classes one module sees, from `gate.steps.exception_types` (empty if unresolved)."""

    def __init__(self, data: dict[str, Any] | None) -> None:
        data = data or {}
        self.by_expr: dict[str, str] = data.get("exprs", {})
        self.classes: dict[str, TypeInfo] = {
            cid: TypeInfo(cid, tuple(info["mro"])) for cid, info in data.get("classes", {}).items()}
        self.names: dict[str, str] = data.get("names", {})
        self.named_in_file: set[str] = set(data.get("named_in_file", []))

    def resolve(self, expr: str) -> TypeInfo | None:
        cid = self.by_expr.get(expr)
        return self.classes.get(cid) if cid else None

    def is_subclass(self, a: TypeInfo, b: TypeInfo) -> bool:
        return b.id in a.mro

    def ancestors(self, info: TypeInfo) -> list[TypeInfo]:
        """Strict ancestors up to and including Exception, nearest first."""
        if EXCEPTION not in info.mro or info.id == EXCEPTION:
            return []
        chain = info.mro[1:info.mro.index(EXCEPTION) + 1]
        return [self.classes[c] for c in chain if c in self.classes and c in self.names]

    def descendants(self, info: TypeInfo) -> list[TypeInfo]:
        """Known strict subclasses, nearest first, those the file names before the others."""
        subs = [c for c in self.classes.values() if c.id != info.id and info.id in c.mro and c.id in self.names]
        subs.sort(key=lambda c: (c.mro.index(info.id), c.id not in self.named_in_file, c.id))
        return subs

    def minimal(self, infos: Sequence[TypeInfo]) -> frozenset[str]:
        """What a tuple of types catches, as the set of its members no other member already covers."""
        return frozenset(a.id for a in infos if not any(b.id != a.id and self.is_subclass(a, b) for b in infos))


def find_mutations(wrapper: Any, positions: Any, regions: Sequence[Sequence[Any]], config: dict[str, Any],
                   *, ignored_lines: set[int], file: str) -> list[Candidate]:
    """Every gate mutation of the module in `wrapper` that lies in `regions` ((start, end, kind) rows)."""
    finder = _Finder(positions, regions, config, Hierarchy(config.get("exceptions", {}).get(file)),
                     ignored_lines)
    wrapper.module.visit(finder)
    return finder.found


class _Finder(cst.CSTVisitor):
    def __init__(self, positions: Any, regions: Sequence[Sequence[Any]], config: dict[str, Any],
                 hierarchy: Hierarchy, ignored_lines: set[int]) -> None:
        super().__init__()
        self.positions = positions
        self.spans = [(int(r[0]), int(r[1])) for r in regions]
        self.cleanup_spans = {(int(r[0]), int(r[1])) for r in regions if r[2] == "cleanup"}
        self.enabled = set(config.get("enabled", OPERATORS))
        self.hierarchy = hierarchy
        self.ignored = ignored_lines
        self.found: list[Candidate] = []
        self.handling: list[str] = []  # "handler" / "finally" / "cleanup": where statements are mutated
        self.functions: list[cst.FunctionDef] = []

    # bookkeeping

    def _in_region(self, node: cst.CSTNode) -> bool:
        pos = self.positions.get(node)
        if pos is None or pos.start.line in self.ignored:
            return False
        return any(s <= pos.start.line and pos.end.line <= e for s, e in self.spans)

    def _add(self, operator: str, original: cst.CSTNode, mutated: cst.CSTNode) -> None:
        if operator in self.enabled and self._in_region(original):
            self.found.append(Candidate(operator, original, mutated))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node)
        pos = self.positions.get(node)
        first = node.decorators[0] if node.decorators else node
        start = self.positions.get(first, pos).start.line if pos else None
        if pos is not None and (start, pos.end.line) in self.cleanup_spans:
            self.handling.append("cleanup")
        else:
            self.handling.append("")

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.pop()
        self.handling.pop()

    def visit_Finally(self, node: cst.Finally) -> None:
        if not _is_only(node.body, cst.Pass):
            self._add("finally-delete", node.body, _body_of(node.body, cst.Pass()))
        self.handling.append("finally")

    def leave_Finally(self, node: cst.Finally) -> None:
        self.handling.pop()

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        self._handler(node)

    def leave_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        self.handling.pop()

    def visit_ExceptStarHandler(self, node: cst.ExceptStarHandler) -> None:
        self._handler(node)

    def leave_ExceptStarHandler(self, node: cst.ExceptStarHandler) -> None:
        self.handling.pop()

    # handlers

    def _handler(self, node: cst.ExceptHandler | cst.ExceptStarHandler) -> None:
        if not _is_only(node.body, cst.Pass):
            self._add("swallow", node.body, _body_of(node.body, cst.Pass()))
        if not _is_only(node.body, cst.Raise, bare=True):
            self._add("reraise", node.body, _body_of(node.body, cst.Raise()))
        self._caught_types(node)
        self.handling.append("handler")

    def _caught_types(self, node: cst.ExceptHandler | cst.ExceptStarHandler) -> None:
        if node.type is None:  # a bare `except:`
            self._add("unreachable", node, node.with_changes(
                type=cst.Tuple([]), whitespace_after_except=cst.SimpleWhitespace(" ")))
            return
        self._add("unreachable", node.type, cst.Tuple([]))
        elements = _type_elements(node.type)
        infos = [self.hierarchy.resolve(_code(e)) for e in elements]
        if any(i is None for i in infos):
            return  # unresolved: a type change could be a no-op, so make none
        resolved: list[TypeInfo] = [i for i in infos if i is not None]
        original = self.hierarchy.minimal(resolved)
        for index, info in enumerate(resolved):
            for ancestor in self.hierarchy.ancestors(info):
                self._retype(node, elements, resolved, index, ancestor, original, "broaden")
            for descendant in self.hierarchy.descendants(info)[:MAX_NARROWINGS]:
                self._retype(node, elements, resolved, index, descendant, original, "narrow")
            if len(resolved) > 1:
                rest = resolved[:index] + resolved[index + 1:]
                if self.hierarchy.minimal(rest) != original:
                    kept = [e for i, e in enumerate(elements) if i != index]
                    self._add("narrow", node.type, _type_expr(kept))

    def _retype(self, node: Any, elements: list[cst.BaseExpression], resolved: list[TypeInfo], index: int,
                new: TypeInfo, original: frozenset[str], operator: str) -> None:
        changed = resolved[:index] + [new] + resolved[index + 1:]
        if self.hierarchy.minimal(changed) == original:
            return  # catches exactly the same exceptions: an equivalent mutant
        replacement = cst.parse_expression(self.hierarchy.names[new.id])
        new_elements = elements[:index] + [replacement] + elements[index + 1:]
        self._add(operator, node.type, _type_expr(new_elements))

    def visit_Try(self, node: cst.Try) -> None:
        self._clauses(node)

    def visit_TryStar(self, node: cst.TryStar) -> None:
        self._clauses(node)

    def _clauses(self, node: cst.Try | cst.TryStar) -> None:
        handlers = list(node.handlers)
        if len(handlers) > 1 or (handlers and node.finalbody is not None and node.orelse is None):
            for i, handler in enumerate(handlers):
                if self._in_region(handler):
                    self._add_unchecked("clause-delete", node,
                                        node.with_changes(handlers=handlers[:i] + handlers[i + 1:]))
        for i in range(len(handlers) - 1):
            first, second = handlers[i], handlers[i + 1]
            if (self._in_region(first) and self._in_region(second) and self._overlap(first, second)
                    and _code(first.body) != _code(second.body)):
                swapped = handlers[:i] + [second.with_changes(leading_lines=first.leading_lines),
                                          first.with_changes(leading_lines=second.leading_lines)] + handlers[i + 2:]
                self._add_unchecked("handler-order", node, node.with_changes(handlers=swapped))

    def _add_unchecked(self, operator: str, original: cst.CSTNode, mutated: cst.CSTNode) -> None:
        """For mutations anchored on a whole `try`, whose changed lines the caller checked."""
        if operator in self.enabled:
            self.found.append(Candidate(operator, original, mutated))

    def _overlap(self, first: Any, second: Any) -> bool:
        """Whether some exception is caught by both, so that their order decides which one runs."""
        if first.type is None or second.type is None:
            return False  # a bare except must stay last
        a = [self.hierarchy.resolve(_code(e)) for e in _type_elements(first.type)]
        b = [self.hierarchy.resolve(_code(e)) for e in _type_elements(second.type)]
        if any(i is None for i in a + b):
            return False
        return any(self.hierarchy.is_subclass(x, y) or self.hierarchy.is_subclass(y, x)
                   for x in a for y in b if x and y)

    # statements inside handlers, finally bodies and cleanup functions

    def _handling(self) -> bool:
        """Inside a handler, a finally body or a cleanup function, at any depth."""
        return any(self.handling)

    def visit_Expr(self, node: cst.Expr) -> None:
        if not self._handling():
            return
        call = node.value.expression if isinstance(node.value, cst.Await) else node.value
        if isinstance(call, cst.Call):
            self._add("cleanup-call-delete", node, cst.Pass(semicolon=node.semicolon))
            func = call.func
            if (isinstance(func, cst.Attribute) and func.attr.value in LOG_LEVELS_DOWNGRADED
                    and _looks_like_logger(func.value)):
                self._add("log-downgrade", func.attr, cst.Name("debug"))

    def visit_Assign(self, node: cst.Assign) -> None:
        self._reset(node)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._reset(node)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._reset(node)

    def _reset(self, node: cst.Assign | cst.AugAssign | cst.AnnAssign) -> None:
        if self._handling():
            self._add("reset-delete", node, cst.Pass(semicolon=node.semicolon))

    # raise statements, wherever they are

    def visit_Raise(self, node: cst.Raise) -> None:
        if node.exc is None:
            self._add("bare-raise-to-pass", node, cst.Pass(semicolon=node.semicolon))
            return
        if node.cause is not None:
            self._add("raise-drop-cause", node, node.with_changes(cause=None))
        value = None if self._in_async_generator() else cst.Name("None")
        self._add("raise-to-return", node, cst.Return(value=value, semicolon=node.semicolon))

    def _in_async_generator(self) -> bool:
        if not self.functions:
            return False
        function = self.functions[-1]
        return function.asynchronous is not None and _contains_yield(function.body)


def _is_only(body: cst.BaseSuite, kind: type, *, bare: bool = False) -> bool:
    statements = body.body if isinstance(body, cst.IndentedBlock) else [body]
    if len(statements) != 1 or not isinstance(statements[0], cst.SimpleStatementLine):
        return False
    small = statements[0].body
    return len(small) == 1 and isinstance(small[0], kind) and (not bare or small[0].exc is None)


def _body_of(body: cst.BaseSuite, statement: cst.BaseSmallStatement) -> cst.BaseSuite:
    if isinstance(body, cst.IndentedBlock):
        return body.with_changes(body=[cst.SimpleStatementLine([statement])])
    return body.with_changes(body=[statement])


def _type_elements(expr: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(expr, cst.Tuple):
        return [e.value for e in expr.elements]
    return [expr]


def _type_expr(elements: list[cst.BaseExpression]) -> cst.BaseExpression:
    return elements[0] if len(elements) == 1 else cst.Tuple([cst.Element(e) for e in elements])


def _looks_like_logger(expr: cst.BaseExpression) -> bool:
    name = expr.attr.value if isinstance(expr, cst.Attribute) else getattr(expr, "value", "")
    return isinstance(name, str) and "log" in name.lower()


def _contains_yield(node: cst.CSTNode) -> bool:
    class Finder(cst.CSTVisitor):
        found = False

        def visit_Yield(self, _: cst.Yield) -> None:
            self.found = True

        def visit_FunctionDef(self, _: cst.FunctionDef) -> bool:
            return False  # a nested function's yield is its own

        def visit_Lambda(self, _: cst.Lambda) -> bool:
            return False

    finder = Finder()
    node.visit(finder)
    return finder.found


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)
