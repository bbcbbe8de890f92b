"""Resolve the exception classes each guarded module catches and raises, by importing it.

The type-changing operators need facts that only the running module knows: that
`torch.cuda.OutOfMemoryError` *is* `torch.OutOfMemoryError` (so no equivalent mutant is made),
and that it subclasses `RuntimeError`. The import runs in a child process in the snapshot
(`python -m gate.steps.exception_types FILE...`), never in the gate, so the gate stays light.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import importlib
import sys
import tokenize
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gate.errors import InfrastructureError
from gate.imports import module_name, python_path
from gate.process import last_line, run_python
from gate.wire import codec
from gate.wire import types as types_wire
from gate.wire.types import ClassInfo, ModuleTypes, TypesCache, TypesReport

def resolve(work: Path, files: list[str], cache: Path, key: str,
            modules: list[str], import_roots: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Per file: the exception facts the operators use (with `unresolved`: each caught type
    expression that could not be resolved, and why); and, per file, why it could not be imported.
    The child imports the snapshot's code: `import_roots` go first on its `sys.path`.

    The import is repeated only when what the facts depend on changed: `key` (the environment),
    the imports and class statements of `modules` (the project's non-test modules, where the
    hierarchy is defined) and the types the handlers of `files` catch and raise. A change inside
    a function body that touches none of those reuses the last answer; a failed import is never
    reused."""
    if not files:
        return {}, {}
    key = _type_key(work, files, sorted(set(modules) | set(files)), key)
    try:
        cached = codec.read(TypesCache, cache, types_wire.FORMAT)
        if cached.key == key and cached.files == tuple(files):
            return _as_facts(cached.report)
    except codec.WireError:  # none yet, or an older gate's: import again
        pass
    completed = run_python(["-P", "-m", "gate.steps.exception_types", *files], cwd=work,
                           env={"PYTHONPATH": python_path(work, [*import_roots, "."])})
    lines = [line for line in completed.output.splitlines() if line.startswith(types_wire.MARKER)]
    if completed.returncode != 0 or len(lines) != 1:  # the import ended the process, or worse
        raise InfrastructureError(f"resolving the caught exception types of {', '.join(files)} failed "
                                  f"(exit {completed.returncode}): {last_line(completed.output)}")
    report = codec.loads(TypesReport, lines[0][len(types_wire.MARKER):], types_wire.FORMAT)
    if not report.failed:  # an import that failed may work next time
        codec.write(cache, TypesCache(key=key, files=tuple(files), report=report), types_wire.FORMAT)
    return _as_facts(report)


def _as_facts(report: TypesReport) -> tuple[dict[str, Any], dict[str, str]]:
    """The report as the operators' spec carries it on to the mutmut driver (plain data)."""
    return {rel: codec.encode(facts) for rel, facts in report.resolved.items()}, dict(report.failed)


def _type_key(work: Path, files: list[str], modules: list[str], environment_key: str) -> str:
    """A hash of the statements the exception facts depend on: imports, class statements and
    module-level assignments (aliases like `OOM = torch.OutOfMemoryError`) of `modules`, and the
    caught and raised types of `files`."""
    parts = [f"format {types_wire.FORMAT}", environment_key]
    for rel in modules:
        try:
            with tokenize.open(work / rel) as handle:
                tree = ast.parse(handle.read())
        except (OSError, SyntaxError, UnicodeDecodeError) as exc:  # the import will tell what is wrong
            parts.append(f"{rel}: {exc}")
            continue
        parts.append(rel)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                parts.append(ast.dump(node))
            elif isinstance(node, ast.ClassDef):
                parts.append(f"class {node.name}({', '.join(ast.unparse(b) for b in node.bases)})")
        parts += [ast.dump(node) for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))]
        if rel in files:
            caught, raised = _type_exprs_of(tree)
            parts += sorted(set(caught)) + sorted(set(raised))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _class_id(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _module_name(rel: str) -> str:
    return module_name(Path.cwd(), rel)


def _type_exprs(source: str) -> tuple[list[str], list[str]]:
    """Source of every caught type (tuple members one by one) and every raised class."""
    return _type_exprs_of(ast.parse(source))


def _type_exprs_of(tree: ast.AST) -> tuple[list[str], list[str]]:
    caught = [expr for _, exprs in _caught_of(tree) for expr in exprs]
    raised: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            raised.append(ast.unparse(exc))
    return caught, raised


def caught_exprs_by_line(source: str) -> dict[int, list[str]]:
    """The source of each type an `except` clause names (tuple members one by one), by the line of its `except`."""
    return {line: exprs for line, exprs in _caught_of(ast.parse(source))}


def _caught_of(tree: ast.AST) -> Iterator[tuple[int, list[str]]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            elements = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
            yield node.lineno, [ast.unparse(e) for e in elements]


class _Unresolvable(Exception):
    """A caught type expression the gate cannot turn into exception classes; the message says why."""


def _evaluate(expr: str, namespace: dict[str, Any]) -> Any:
    node = ast.parse(expr, mode="eval").body
    if not isinstance(node, (ast.Name, ast.Attribute)):  # only names and dotted attributes: no user code runs
        raise _Unresolvable("not a name or a dotted attribute, which the gate resolves without running code")
    try:
        return eval(compile(ast.Expression(node), "<type>", "eval"), dict(namespace))  # noqa: S307
    except Exception as exc:
        raise _Unresolvable(f"{type(exc).__name__}: {exc}") from None


def _is_exception_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseException)


def _facts(rel: str) -> ModuleTypes:
    module = importlib.import_module(_module_name(rel))
    namespace = vars(module)
    with tokenize.open(rel) as handle:
        caught, raised = _type_exprs(handle.read())
    exprs: dict[str, str] = {}
    classes: dict[str, type] = {}
    named_in_file: set[str] = set()
    unresolved: dict[str, str] = {}
    for expr in caught + raised:
        try:
            value = _evaluate(expr, namespace)
        except _Unresolvable as why:
            if expr in caught:  # a raised class is only a hint; a caught type is what the operators change
                unresolved[expr] = str(why)
            continue
        if _is_exception_class(value):
            exprs[expr] = _class_id(value)
            classes[_class_id(value)] = value
            named_in_file.add(_class_id(value))
        elif expr in caught and not (isinstance(value, tuple) and all(map(_is_exception_class, value))):
            # a name bound to a tuple of classes is known; the operators leave it as it is
            unresolved[expr] = f"it is a {type(value).__name__}, not an exception class"
    candidates = [v for v in namespace.values() if isinstance(v, type) and issubclass(v, BaseException)]
    candidates += [v for v in vars(builtins).values() if isinstance(v, type) and issubclass(v, BaseException)]
    for cls in candidates + [base for c in list(classes.values()) for base in c.__mro__]:
        if isinstance(cls, type) and issubclass(cls, BaseException):
            classes.setdefault(_class_id(cls), cls)
    names = {cid: name for cid, cls in classes.items() if (name := _name_in(cls, namespace, exprs)) is not None}
    return ModuleTypes(exprs=exprs, classes={cid: ClassInfo(tuple(_class_id(c) for c in cls.__mro__))
                                             for cid, cls in classes.items()},
                       names=names, named_in_file=tuple(sorted(named_in_file)), unresolved=unresolved)


def _name_in(cls: type, namespace: dict[str, Any], exprs: dict[str, str]) -> str | None:
    """An expression that names `cls` inside the module: what the file itself writes, a global,
    an attribute of an imported module, or a builtin."""
    cid = _class_id(cls)
    spelled = sorted((e for e, c in exprs.items() if c == cid), key=len)
    if spelled:
        return spelled[0]
    for name, value in namespace.items():
        if value is cls:
            return name
    for name, value in namespace.items():
        if isinstance(value, types.ModuleType) and getattr(value, cls.__name__, None) is cls:
            return f"{name}.{cls.__name__}"
    if getattr(builtins, cls.__name__, None) is cls:
        return cls.__name__
    return None


def main(files: list[str]) -> int:
    resolved: dict[str, ModuleTypes] = {}
    failed: dict[str, str] = {}
    for rel in files:
        try:
            resolved[rel] = _facts(rel)
        except BaseException as exc:  # an import that fails: the type operators stay silent for it
            failed[rel] = f"importing {_module_name(rel)} failed: {type(exc).__name__}: {exc}"
    print(types_wire.MARKER + codec.dumps(TypesReport(resolved, failed), types_wire.FORMAT), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
