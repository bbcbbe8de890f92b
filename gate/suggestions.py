"""The assertion a test lacks, written in the test's own style, from a difference the probe saw
(`gate.observation`): `self.assertEqual(engine.out_of_memory_count, 1)` in a `unittest` class,
`assert engine.out_of_memory_count == 1` in a pytest function, placed after the statement of the
test that made the call. Pure: the probe verifies each candidate (it must pass on the original and
fail on the mutant) before anyone sees it, and `python -m gate suggest --apply` writes a verified
one into the test file."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from gate.errors import ConfigError
from gate.files import write_atomic
from gate.result import Suggestion, find_mutant, from_dict
from gate.wire.probe import Check, Difference, Site, Target

RAISES = {"assertRaises", "assertRaisesRegex", "raises"}
"""The context managers that catch the exception a test expects: code after them runs, inside not."""


def candidates(test: str, source: str, difference: Difference, file: str | None = None,
               line: int | None = None) -> list[Suggestion]:
    """The assertions that would notice `difference` in `test` (a node id), likeliest first; none
    where the value cannot be written down or the test has no name for it. `source` is the text of
    `file`, where the test function was defined (by default the node id's file), starting at `line`
    (its code's first line; by default it is found by the node id's names)."""
    check, site = difference.check, difference.site
    if check is None or site is None:
        return []
    own_file, _, qualname = test.partition("::")
    file = file or own_file
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = (function_at(tree, line) if line is not None
             else function_named(tree, qualname.split("[", 1)[0].split("::")))
    if found is None:
        return []
    function, cls = found
    unittest_style = cls is not None and bool(cls.bases) and "self.assert" in (ast.get_source_segment(source, cls) or "")
    path = _statement_path(function.body, site.line)
    if not path:
        return []
    made, rewrite = _assertions(check, site, function, path, source, unittest_style)
    suggestions, seen = [], set()
    text_lines = source.splitlines()
    for statement, lines in made:
        end = statement.end_lineno or statement.lineno
        indent = " " * statement.col_offset
        suggestion = Suggestion(test=test, file=file, after_line=end, anchor=text_lines[end - 1],
                                lines=tuple(indent + line for line in lines),
                                **({"rewrite_line": rewrite[0], "rewrite_from": rewrite[1], "rewrite_to": rewrite[2]}
                                   if rewrite else {}))
        if (end, suggestion.lines) not in seen:
            seen.add((end, suggestion.lines))
            suggestions.append(suggestion)
    return suggestions


def _assertions(check: Check, site: Site, function: Any, path: list[ast.stmt], source: str,
                unittest_style: bool) -> tuple[list[tuple[ast.stmt, list[str]]], tuple[int, str, str] | None]:
    """The statements to put each assertion after (likeliest first), and a line to rewrite first."""
    made: list[tuple[ast.stmt, list[str]]] = []
    rewrite: tuple[int, str, str] | None = None
    if check.target is Target.RAISED:
        raises = next((s for s in reversed(path) if _raises_name(s) is not None), None)
        name = _raises_name(raises)
        if name == "":  # `with self.assertRaises(E):` has no name for the exception: it gets one
            name = _free_name(function, "raised")
            rewrite = _named_with(raises, source, name)
            name = name if rewrite is not None else None
        lines = (_raised_check(check, f"{name}.exception" if unittest_style else f"{name}.value", unittest_style)
                 if raises is not None and name else None)
        if lines:
            made.append((raises, lines))
        caught = _caught_in_handler(path) if raises is None else None
        if caught is not None:  # `try: ... except E as error:` in the test: checked at the handler's end
            handler, name = caught
            lines = _raised_check(check, name, unittest_style)
            if lines:
                made.append((handler.body[-1], lines))
    elif check.target is Target.LOG:
        found_log = _log_check(check, function, path, unittest_style)
        if found_log is not None:
            made.append(found_log)
    else:
        lines = _value_check(check, site, path, unittest_style)
        if lines:
            outermost = next((s for s in path if _raises_name(s) is not None), None)
            after = outermost if outermost is not None else path[-1]
            made += [(after, lines), (path[0], lines)]
    return made, rewrite


def function_named(tree: ast.Module, parts: list[str]) -> tuple[ast.AST, ast.ClassDef | None] | None:
    """The function the qualified name's `parts` name (`["Class", "test_x"]`), and its class."""
    scope: list[ast.stmt] = tree.body
    cls = None
    for index, part in enumerate(parts):
        node = next((n for n in scope if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            return None
        if index == len(parts) - 1:
            return (node, cls) if not isinstance(node, ast.ClassDef) else None
        if not isinstance(node, ast.ClassDef):
            return None
        cls, scope = node, node.body
    return None


def function_at(tree: ast.Module, line: int) -> tuple[ast.AST, ast.ClassDef | None] | None:
    """The function whose code starts at `line` (its first decorator's, or its `def`), and its class."""
    def search(body: list[ast.stmt], cls: ast.ClassDef | None) -> tuple[ast.AST, ast.ClassDef | None] | None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if min([node.lineno, *(d.lineno for d in node.decorator_list)]) == line:
                    return node, cls
            elif isinstance(node, ast.ClassDef):
                found = search(node.body, node)
                if found is not None:
                    return found
        return None
    return search(tree.body, None)


def _free_name(function: ast.AST, wanted: str) -> str:
    """`wanted`, or `wanted_2`, ...: a name the test function does not use yet."""
    used = {n.id for n in ast.walk(function) if isinstance(n, ast.Name)} | {
        a.arg for a in ast.walk(function) if isinstance(a, ast.arg)}
    name, number = wanted, 1
    while name in used:
        number += 1
        name = f"{wanted}_{number}"
    return name


def _named_with(statement: ast.stmt, source: str, name: str) -> tuple[int, str, str] | None:
    """(line, its text, its text with ` as NAME`) for a one-item `with` whose context manager ends on
    its first line; None for any other shape (it is left alone)."""
    if not isinstance(statement, (ast.With, ast.AsyncWith)) or len(statement.items) != 1:
        return None
    call = statement.items[0].context_expr
    if call.end_lineno != statement.lineno or call.end_col_offset is None:
        return None
    text = source.splitlines()[statement.lineno - 1]
    encoded = text.encode()  # the offsets count UTF-8 bytes
    head, tail = encoded[:call.end_col_offset].decode(), encoded[call.end_col_offset:].decode()
    if not tail.lstrip().startswith(":"):
        return None
    return statement.lineno, text, f"{head} as {name}{tail}"


def _statement_path(body: list[ast.stmt], line: int) -> list[ast.stmt]:
    """The statements that hold `line`, outermost (a statement of the test's own body) first."""
    for statement in body:
        if statement.lineno <= line <= (statement.end_lineno or statement.lineno):
            inner: list[ast.stmt] = []
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(statement, field, None)
                if isinstance(children, list):
                    stmts = [c for c in children if isinstance(c, ast.stmt)]
                    for handler in (c for c in children if isinstance(c, ast.ExceptHandler)):
                        stmts += handler.body
                    inner = inner or _statement_path(stmts, line)
            return [statement, *inner]
    return []


def _caught_in_handler(path: list[ast.stmt]) -> tuple[ast.ExceptHandler, str] | None:
    """The innermost `try` of the test around the call with a named handler: (the handler, its name)."""
    for statement in reversed(path[:-1]):
        if isinstance(statement, ast.Try) and any(path[-1] is s or _holds(s, path[-1]) for s in statement.body):
            handler = next((h for h in statement.handlers if h.name), None)
            if handler is not None and handler.body:
                return handler, handler.name
    return None


def _holds(outer: ast.stmt, inner: ast.stmt) -> bool:
    return any(node is inner for node in ast.walk(outer))


def _raises_name(statement: ast.stmt | None) -> str | None:
    """The `as` name of a `with self.assertRaises(...)` / `pytest.raises(...)` statement, '' when it
    has none; None for any other statement."""
    if not isinstance(statement, (ast.With, ast.AsyncWith)):
        return None
    for item in statement.items:
        call = item.context_expr
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in RAISES:
            return item.optional_vars.id if isinstance(item.optional_vars, ast.Name) else ""
    return None


def _log_check(check: Check, function: ast.AST, path: list[ast.stmt], unittest_style: bool
               ) -> tuple[ast.stmt, list[str]] | None:
    """A log record the original emitted and the mutant did not, checked where the test captures
    records: after its `with self.assertLogs(...) as logs` block, or through pytest's `caplog`."""
    missing = [r for r in check.original if r not in check.mutant]
    level, _, message = missing[0].partition(" ") if missing else ("", "", "")
    if _literal(message) is None and " with {" in message:  # the record's `extra=` attributes follow
        message = message[:message.rindex(" with {")]
    if not level or _literal(message) is None:
        return None
    pair = f"({level!r}, {message})"
    if unittest_style:
        captured = next(((s, n) for s in reversed(path) if (n := _with_name(s, {"assertLogs"}))), None)
        if captured is None:
            return None
        statement, name = captured
        return statement, [f"self.assertIn({pair}, [(r.levelname, r.getMessage()) for r in {name}.records])"]
    if "caplog" not in {a.arg for a in function.args.args}:  # type: ignore[attr-defined]
        return None
    return path[-1], [f"assert {pair} in [(r.levelname, r.getMessage()) for r in caplog.records]"]


def _with_name(statement: ast.stmt, methods: set[str]) -> str | None:
    """The `as` name of a `with` statement entering one of `methods` (`self.assertLogs(...)`)."""
    if isinstance(statement, (ast.With, ast.AsyncWith)):
        for item in statement.items:
            call = item.context_expr
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in methods
                    and isinstance(item.optional_vars, ast.Name)):
                return item.optional_vars.id
    return None


def _literal(text: Any) -> str | None:
    """`text` (a description) when it is a literal a test can compare with: a number, string, ..."""
    if not isinstance(text, str) or text.endswith("...") or text.startswith("a "):
        return None
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return text


def _is(expr: str, value: str, unittest_style: bool) -> str:
    method = {"None": "assertIsNone({e})", "True": "assertIs({e}, True)", "False": "assertIs({e}, False)"}
    plain = {"None": "assert {e} is None", "True": "assert {e} is True", "False": "assert {e} is False"}
    if value in method:
        return ("self." + method[value] if unittest_style else plain[value]).format(e=expr)
    return f"self.assertEqual({expr}, {value})" if unittest_style else f"assert {expr} == {value}"


def _value_check(check: Check, site: Site, path: list[ast.stmt], unittest_style: bool) -> list[str] | None:
    names = site.names
    if check.target is Target.SELF:
        if "self" not in names or not str(check.attr).isidentifier():
            return None
        expr = f"{names['self']}.{check.attr}"
        value = _literal(check.original)
        if value is not None:
            return [_is(expr, value, unittest_style)]
        if check.mutant == "None" and str(check.original).startswith("a "):
            return [f"self.assertIsNotNone({expr})" if unittest_style else f"assert {expr} is not None"]
        return None
    if check.target is Target.MOCK:
        expr, calls = names.get(str(check.mock)), check.original
        if expr is None or not all(c.startswith("call(") for c in calls):
            return None
        if calls == []:
            return [f"{expr}.assert_not_called()"]
        if calls == ["call()"]:
            return [f"{expr}.assert_called_once_with()"]
        return [_is(f"{expr}.call_count", str(len(calls)), unittest_style)]
    if check.target is Target.RETURNED and site.direct:
        statement = path[-1]
        target = statement.targets[0] if isinstance(statement, ast.Assign) and len(statement.targets) == 1 else None
        value = _literal(check.original)
        if isinstance(target, ast.Name) and value is not None:
            return [_is(target.id, value, unittest_style)]
    return None


def _raised_check(check: Check, caught: str | None, unittest_style: bool) -> list[str] | None:
    """The checks of the exception `caught` (an expression) names."""
    if not caught:
        return None
    part, original = check.part, check.original

    def type_is(expr: str, described: str) -> str:
        return _is(f"type({expr}).__name__", repr(described.split("(", 1)[0]), unittest_style)

    if part == "type":
        kind, _, message = str(original).partition("(")
        message = _literal(message[:-1]) if message.endswith(")") else None
        same_type = str(check.mutant or "").partition("(")[0] == kind
        lines = [] if same_type else [type_is(caught, str(original))]  # the test's own check has the type
        if message is not None:
            lines.append(_is(f"str({caught})", message, unittest_style))
        return lines or None
    if part in ("cause", "context"):
        expr = f"{caught}.__{part}__"
        return [_is(expr, "None", unittest_style) if original is None else type_is(expr, original)]
    if part == "suppress_context":
        return [_is(f"{caught}.__suppress_context__", str(bool(original)), unittest_style)]
    if part == "frames" and original:
        names = f"[f.name for f in traceback.extract_tb({caught}.__traceback__)]"
        last = original[-1]
        return ["import traceback", f"self.assertIn({last!r}, {names})" if unittest_style
                else f"assert {last!r} in {names}"]
    return None


def suggestion_for(result_file: Path, mutant: str) -> Suggestion:
    """The verified suggestion the run in `result_file` (its `gate-result.json`) made for `mutant`
    (mutmut's name or the readable one the reports print)."""
    try:
        mutants = from_dict(json.loads(result_file.read_text())).mutants
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"no result of a gate run to read in {result_file} ({type(exc).__name__}: {exc}): run "
                          "the gate first") from None
    try:
        found = find_mutant(mutants, mutant)
    except ValueError as exc:
        raise ConfigError(f"the last run ({result_file}): {exc}") from None
    if not found.suggestion:
        raise ConfigError(f"the last run verified no suggested check for {found.label} "
                          f"({found.status.value}: {found.missing_check or 'no explanation'})")
    return found.suggestion


def apply(root: Path, suggestion: Suggestion) -> None:
    """Write `suggestion` into its test file under `root`, if the file still has its anchor line."""
    path = root / suggestion.file
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {suggestion.file}: {exc}") from None
    try:
        changed = suggestion.applied_to(text)
    except ValueError as exc:
        raise ConfigError(f"{exc}: the test file changed since the run; run the gate again") from None
    mode = path.stat().st_mode
    write_atomic(path, changed)
    path.chmod(mode)
