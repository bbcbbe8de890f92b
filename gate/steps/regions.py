"""Find the error-handling regions of Python source: the one finder every other step uses.

A region is an `except` handler (its type expression and body), a `finally` body, a `raise`
statement, or a whole function the policy names as cleanup.
"""

from __future__ import annotations

import ast
import hashlib
import tokenize
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gate.errors import ConfigError, InfrastructureError, SourceSyntaxError
from gate.policy import IDENTITY_DECORATORS
from gate.result import Region, RegionKind


def guarded_files(root: Path, paths: Iterable[str]) -> list[str]:
    """The Python files under the guarded `paths`; none is a configuration error."""
    files = list(iter_python_files(root, paths))
    if not files:
        raise ConfigError(f"the guarded paths {', '.join(paths)} hold no Python files")
    return files


def find_all(root: Path, files: list[str], cleanup_names: Iterable[str]) -> list[Region]:
    """`find_regions`, failing closed when it finds nothing in files that do handle errors (a
    second, independent reading: the tokens)."""
    regions = find_regions(root, files, cleanup_names)
    if regions:
        return regions
    keywords = {"except", "finally", "raise"}
    holding = []
    for rel in files:
        with open(root / rel, "rb") as handle:
            if any(t.type == tokenize.NAME and t.string in keywords for t in tokenize.tokenize(handle.readline)):
                holding.append(rel)
    if holding:
        raise InfrastructureError(f"no error-handling regions found in {len(holding)} guarded files that use "
                                  f"except/finally/raise (first: {holding[0]})")
    return regions


def find_regions(root: Path, files: Iterable[str], cleanup_names: Iterable[str]) -> list[Region]:
    """All regions of `files` (paths relative to `root`), sorted by file and line."""
    cleanup = frozenset(cleanup_names)
    regions: list[Region] = []
    for rel in files:
        regions.extend(regions_of_source(read_source(root / rel), rel, cleanup))
    return sorted(regions, key=lambda r: (r.file, r.start, r.end, r.kind.value))


def read_source(path: Path) -> str:
    """A Python file's text in the encoding it declares (PEP 263), as the interpreter reads it."""
    try:
        with tokenize.open(path) as handle:
            return handle.read()
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise SourceSyntaxError(f"{path}: cannot read guarded file: {exc}") from exc


def regions_of_source(source: str, rel: str, cleanup_names: frozenset[str] = frozenset()) -> list[Region]:
    try:
        tree = ast.parse(source, filename=rel)
    except SyntaxError as exc:
        raise SourceSyntaxError(f"{rel}:{exc.lineno}: cannot parse guarded file: {exc.msg}") from exc
    finder = _RegionFinder(source, rel, cleanup_names)
    finder.visit(tree)
    return finder.regions


@dataclass(frozen=True)
class _Scope:
    name: str
    is_class: bool
    node: ast.AST


class _RegionFinder(ast.NodeVisitor):
    def __init__(self, source: str, rel: str, cleanup_names: frozenset[str]) -> None:
        self.source = source
        self.rel = rel
        self.cleanup_names = cleanup_names
        self.regions: list[Region] = []
        self.scopes: list[_Scope] = []
        self.unit_nodes: set[int] = set()
        self.path: list[ast.AST] = []
        """The nodes from the module down to the one visited."""
        self.bindings: dict[str, set[str | None]] = {}
        """What each module-level name is bound to (`_bindings`)."""

    def visit(self, node: ast.AST) -> None:
        self.path.append(node)
        try:
            super().visit(node)
        finally:
            self.path.pop()

    def visit_Module(self, node: ast.Module) -> None:
        self.unit_nodes = {id(unit) for _, unit in _unit_nodes(node)}
        self.bindings = _bindings(node.body)
        self.generic_visit(node)

    # scopes

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._in_scope(node, node.name, is_class=True)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        qualname = self._qualname(node.name)
        if node.name in self.cleanup_names or qualname in self.cleanup_names:
            start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            self._add(node, RegionKind.CLEANUP, f"cleanup {qualname}", _first_statement_line(node.body),
                      start=start, function=qualname, shape=_shape_of(node))
        self._in_scope(node, node.name, is_class=False)

    visit_AsyncFunctionDef = visit_FunctionDef

    def _in_scope(self, node: ast.AST, name: str, *, is_class: bool) -> None:
        self.scopes.append(_Scope(name, is_class, node))
        self.generic_visit(node)
        self.scopes.pop()

    # regions

    def visit_Try(self, node: ast.Try | ast.TryStar) -> None:
        star = "*" if isinstance(node, ast.TryStar) else ""
        body = _shape_of(*node.body)
        for handler in node.handlers:
            type_source = ast.get_source_segment(self.source, handler.type) if handler.type else None
            label = f"except{star} {type_source}" if type_source else f"except{star}"
            self._add(handler, RegionKind.EXCEPT, label, _first_statement_line(handler.body),
                      shape=_shape_of(handler) + body)
        if node.finalbody:
            first, last = node.finalbody[0], node.finalbody[-1]
            self._add(first, RegionKind.FINALLY, "finally", first.lineno, end=last.end_lineno,
                      shape=_shape_of(*node.finalbody) + body)
        self.generic_visit(node)

    visit_TryStar = visit_Try

    def visit_Raise(self, node: ast.Raise) -> None:
        label = "raise"
        if node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            label = f"raise {ast.get_source_segment(self.source, exc)}"
        self._add(node, RegionKind.RAISE, label, node.lineno, shape=self._raise_context(node))
        self.generic_visit(node)

    # helpers

    def _raise_context(self, node: ast.Raise) -> str:
        """The statement a `raise` is in (a handler, an `if`); directly in a function's body, the
        `raise` and the statement before it (the whole function would change with every edit)."""
        parent = self.path[-2]
        if not isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            return _shape_of(parent)
        before = [s for s in parent.body if s.end_lineno is not None and s.end_lineno < node.lineno]
        return _shape_of(*before[-1:], node)

    def _qualname(self, name: str) -> str:
        return ".".join([s.name for s in self.scopes] + [name])

    def _add(self, node: ast.AST, kind: RegionKind, label: str, entry_line: int, *, shape: str,
             start: int | None = None, end: int | None = None, function: str | None = None) -> None:
        unit, decorators, unit_problem = self._unit(node)
        self.regions.append(Region(
            file=self.rel,
            start=start if start is not None else node.lineno,
            end=end if end is not None else node.end_lineno,
            kind=kind,
            function=function or ".".join(s.name for s in self.scopes) or "<module>",
            label=" ".join(label.split()),
            entry_line=entry_line,
            unit=unit,
            unit_decorators=decorators,
            unit_problem=unit_problem,
            shape=hashlib.sha256(shape.encode()).hexdigest()[:16],
        ))

    def _unit(self, node: ast.AST) -> tuple[str | None, tuple[str, ...], str | None]:
        """The top-level function (or top-level class method) a node lies in: what mutmut copies;
        its decorators; and why mutmut does not copy it after all, if it does not."""
        scopes = list(self.scopes)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            scopes.append(_Scope(node.name, False, node))
        if not scopes:
            return None, (), None
        first = scopes[0]
        if first.is_class:
            if len(scopes) < 2:
                return None, (), None
            second = scopes[1]
            if second.is_class:
                return None, (), "in a class nested in a class, whose methods mutmut does not trampoline"
            name, unit_node = f"{first.name}.{second.name}", second.node
            # a method's decorators are evaluated in its class's body, which may rebind a name
            class_body = getattr(first.node, "body", [])
        else:
            name, unit_node = first.name, first.node
            class_body = []
        problem = None
        if id(unit_node) not in self.unit_nodes:  # the same units as `unit_spans`, and as mutmut's
            problem = f"{name} is defined inside a block (if, try, with, for), where mutmut does not trampoline it"
        elif any(s.is_class for s in scopes[1:]):
            problem = "in a class nested in a function, whose methods mutmut does not trampoline"
        return name, self._decorators(unit_node, class_body), problem

    def _decorators(self, node: ast.AST, class_body: list[ast.stmt]) -> tuple[str, ...]:
        """Each decorator's source; one that is an identity decorator (`IDENTITY_DECORATORS`) by
        what its name is imported as, by that qualified name (`typing_extensions.override`)."""
        bindings = {name: set(found) for name, found in self.bindings.items()}
        for name, found in _bindings(class_body).items():
            bindings.setdefault(name, set()).update(found)
        shown = []
        for decorator in getattr(node, "decorator_list", []):
            qualified = _qualified(decorator, bindings)
            identity = qualified is not None and qualified <= IDENTITY_DECORATORS
            shown.append(min(qualified) if identity and qualified else
                         ast.get_source_segment(self.source, decorator) or "")
        return tuple(shown)


def _bindings(statements: list[ast.stmt]) -> dict[str, set[str | None]]:
    """Each name these statements bind (also inside an `if`, `try`, `with` or `for` among them,
    where `try: from typing import override` / `except ImportError: from typing_extensions import
    override` binds one name twice) -> the qualified names its imports give it; None for any other
    binding (an assignment, a `def`), which makes the name's meaning unknown."""
    found: dict[str, set[str | None]] = {}
    for node in statements:
        if isinstance(node, ast.Import):
            for alias in node.names:
                name, target = (alias.asname, alias.name) if alias.asname else (alias.name.split(".")[0],) * 2
                found.setdefault(name, set()).add(target)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                target = f"{node.module}.{alias.name}" if node.module and not node.level else None
                found.setdefault(alias.asname or alias.name, set()).add(target)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.setdefault(node.name, set()).add(None)
        else:
            for child in ast.walk(node) if not hasattr(node, "body") else _own_targets(node):
                if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                    found.setdefault(child.id, set()).add(None)
            for block in _blocks(node):
                for name, targets in _bindings(block).items():
                    found.setdefault(name, set()).update(targets)
    return found


def _own_targets(node: ast.stmt) -> Iterator[ast.AST]:
    """The names a compound statement binds itself (a `for` target, a `with ... as`), not its body's."""
    targets = [node.target] if isinstance(node, (ast.For, ast.AsyncFor)) else []
    targets += [item.optional_vars for item in getattr(node, "items", []) if item.optional_vars is not None]
    targets += [ast.Name(handler.name, ast.Store()) for handler in getattr(node, "handlers", []) if handler.name]
    for target in targets:
        yield from ast.walk(target)


def _blocks(node: ast.stmt) -> Iterator[list[ast.stmt]]:
    for field_name in ("body", "orelse", "finalbody"):
        block = getattr(node, field_name, None)
        if isinstance(block, list):
            yield block
    for handler in getattr(node, "handlers", []):
        yield handler.body


def _qualified(decorator: ast.expr, bindings: dict[str, set[str | None]]) -> set[str] | None:
    """What a decorator `name` or `module.name` is, by the imports that bind its first name (every
    one of them: a name bound twice may be either); None where that cannot be told."""
    parts: list[str] = []
    while isinstance(decorator, ast.Attribute):
        parts.insert(0, decorator.attr)
        decorator = decorator.value
    if not isinstance(decorator, ast.Name):
        return None
    targets = bindings.get(decorator.id)
    if not targets or None in targets:
        return None
    return {".".join([str(target), *parts]) for target in targets}


def _shape_of(*nodes: ast.AST) -> str:
    """The nodes' code, without positions: the same wherever they are moved, or re-indented."""
    return "\0".join(ast.dump(node) for node in nodes)


def _first_statement_line(body: list[ast.stmt]) -> int:
    """The first statement that runs: a leading docstring is not executed code."""
    for statement in body:
        if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str) and len(body) > 1):
            return statement.lineno
    return body[0].lineno


def innermost(regions: Iterable[Region], file: str, start: int, end: int) -> Region | None:
    """The smallest region of `file` that contains lines `start`..`end`."""
    containing = [r for r in regions if r.file == file and r.contains(start, end)]
    return min(containing, key=lambda r: (r.end - r.start, -r.start), default=None)


def iter_python_files(root: Path, paths: Iterable[str]) -> Iterator[str]:
    """Python files under `paths` (files or folders relative to `root`), as sorted relative paths."""
    found: set[str] = set()
    for path in paths:
        target = root / path
        if target.is_file() and target.suffix == ".py":
            found.add(target.relative_to(root).as_posix())
        elif target.is_dir():
            found.update(p.relative_to(root).as_posix() for p in target.rglob("*.py")
                         if "__pycache__" not in p.parts)
    yield from sorted(found)


def _unit_nodes(module: ast.Module) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """The units mutmut copies and trampolines: each function defined directly in the module body,
    and each method defined directly in the body of a class defined directly in the module body."""
    for node in module.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield f"{node.name}.{item.name}", item


def unit_def_lines(source: str) -> dict[int, str]:
    """The line of each unit's `def` keyword (after its decorators) -> its name: how the mutmut
    adapter finds the same units among libcst's nodes."""
    return {node.lineno: name for name, node in _unit_nodes(ast.parse(source))}


def unit_spans(source: str) -> Iterator[tuple[str, int, int]]:
    """(name, first line, last line) of each unit mutmut copies, named like `Region.unit`."""
    for name, node in _unit_nodes(ast.parse(source)):
        yield name, _def_start(node), node.end_lineno or node.lineno


@dataclass(frozen=True)
class UnitShape:
    """What the result cache needs of a unit: where it lies, where its body starts (the lines
    before run at import), the names it refers to, and its class's base classes."""

    name: str
    start: int
    body: int
    end: int
    names: frozenset[str]
    """The last part of each name it calls or refers to (`helper`, `self.clear_cache` ->
    `clear_cache`, a callback handed on by name, a class it instantiates)."""
    bases: tuple[str, ...]
    code: str = ""
    """Its code as the interpreter reads it (`ast.dump`: decorators, signature and annotations,
    docstring, body), without comments or layout."""


def unit_shapes(source: str) -> list[UnitShape]:
    module = ast.parse(source)
    bases = {node.name: tuple(_last_name(b) for b in node.bases) for node in module.body
             if isinstance(node, ast.ClassDef)}
    shapes = []
    for name, node in _unit_nodes(module):
        names = frozenset(filter(None, (_last_name(n) for n in ast.walk(node)
                                        if isinstance(n, (ast.Name, ast.Attribute)))))
        shapes.append(UnitShape(name, _def_start(node), node.body[0].lineno, node.end_lineno or node.lineno, names,
                                bases.get(name.split(".", 1)[0], ()) if "." in name else (),
                                ast.dump(node, include_attributes=False)))
    return shapes


def module_code(source: str, taken: Callable[[str], bool]) -> str:
    """The module's code but the units `taken` picks (by name), as `ast.dump` (without comments or
    layout): each unit taken is a marker of its name in its place (what a name is bound to depends
    on where it is defined), one no parsed code can spell (`<` is in no identifier)."""
    module = ast.parse(source)
    out = {id(node): name for name, node in _unit_nodes(module) if taken(name)}

    def marked(body: list[ast.stmt]) -> list[ast.stmt]:
        return [ast.Expr(ast.Name(id=f"<unit {out[id(s)]}>", ctx=ast.Load())) if id(s) in out else s for s in body]

    for node in module.body:
        if isinstance(node, ast.ClassDef):
            node.body = marked(node.body)
    module.body = marked(module.body)
    return ast.dump(module, include_attributes=False)


def _last_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _def_start(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    return min([node.lineno, *(d.lineno for d in node.decorator_list)])
