"""The mutation policy: `mutmut_config.py`, read the way mutmut 2 users expect.

The file is optional; a missing one means the defaults below. A broken one (syntax error, a hook
that raises or returns nonsense, a setting of the wrong type) is a `ConfigError`, never a silent
default. Declarative settings are module-level names; `pre_mutation(context)` is called for every
candidate mutant and may set `context.skip` (True, or better a string saying why).
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate import checks
from gate.errors import ConfigError

TIMEOUT_OUTCOMES = ("killed", "survived")
CRASH_OUTCOMES = ("error", "killed", "survived")

DEFAULT_CLEANUP_FUNCTIONS = (
    "clear_model", "close", "aclose", "release", "cleanup", "shutdown", "__exit__", "__aexit__",
)
# Decorators that return the function itself, only marking it (`__override__`, `__final__`,
# `__no_type_check__`): the trampoline and every copy mutmut makes of the function are marked
# alike, so they are always safe, whatever safe_decorators says. Matched by what the name is
# imported as (`from typing_extensions import override` then `@override`), never by its spelling.
# Left out: functools.wraps(f) renames the function to f's name, which mutmut's trampoline reads
# (`orig_func.__name__`); abc.abstractmethod would make mutmut's copies abstract methods too.
IDENTITY_DECORATORS = frozenset({
    "typing.override", "typing_extensions.override", "typing.final", "typing_extensions.final",
    "typing.no_type_check", "typing_extensions.no_type_check",
})
# Decorators that only wrap a call (no registration, no descriptor magic), so a decorated
# function can still be copied and trampolined safely.
DEFAULT_SAFE_DECORATORS = (
    "torch.inference_mode()", "torch.no_grad()", "torch.enable_grad()",
    "functools.cache", "functools.lru_cache", "functools.lru_cache()",
)


@dataclass(frozen=True)
class Policy:
    source: str
    """Where it came from: the file's path, or `defaults`."""
    guarded_paths: tuple[str, ...] | None = None
    """Files or folders whose error handling is guarded; None means: guess like mutmut does."""
    cleanup_functions: tuple[str, ...] = DEFAULT_CLEANUP_FUNCTIONS
    timeout_counts_as: str = "killed"
    crash_counts_as: str = "error"
    safe_decorators: tuple[str, ...] = DEFAULT_SAFE_DECORATORS
    operators: tuple[str, ...] | None = None
    """The gate's own operators to use (`gate.operators.OPERATORS`); None means all of them."""
    accept_unmutated: dict[str, str] = field(default_factory=dict)
    """Regions mutmut cannot mutate, accepted knowingly: `file:function` (or `file:line`) -> why."""
    message_mutants: bool = True
    """Whether mutants that change only a raised exception's message are tested (`False`: each is
    skipped, with that reason, and still counted)."""
    pre_mutation: Callable[[Any], Any] | None = None


@dataclass
class MutationContext:
    """What `pre_mutation(context)` sees, after mutmut 2's contract, plus what the gate knows."""

    filename: str
    current_source_line: str
    current_line_index: int
    """0-based, as in mutmut 2."""
    region_kind: str
    function_name: str
    operator: str
    mutant_name: str
    skip: bool | str = False


def _operator_names(where: str, value: Any) -> tuple[str, ...]:
    from gate.operators import OPERATORS

    names = checks.str_list(where, value)
    unknown = [n for n in names if n not in OPERATORS]
    if unknown:
        raise ConfigError(f"{where} has an unknown operator {unknown[0]!r} (known: {', '.join(OPERATORS)})")
    return names


# Each declarative setting and the check that validates it.
_SETTINGS: dict[str, Callable[[str, Any], Any]] = {
    "guarded_paths": checks.str_list,
    "cleanup_functions": checks.str_list,
    "safe_decorators": checks.str_list,
    "timeout_counts_as": checks.choice(TIMEOUT_OUTCOMES),
    "crash_counts_as": checks.choice(CRASH_OUTCOMES),
    "accept_unmutated": checks.reason_map,
    "operators": _operator_names,
    "message_mutants": checks.boolean,
}


def load_policy(path: Path, display: str) -> Policy:
    """Load `mutmut_config.py` at `path`; defaults when it does not exist."""
    if not path.exists():
        return Policy(source="defaults")
    module = _exec_module(path, display)
    # a public name the file assigns is a setting: one the gate does not know is a typo or a
    # setting of another tool, and either way would be silently ignored
    for name, line in _assigned_names(path):
        if not name.startswith("_") and name not in _SETTINGS and name != "pre_mutation":
            close = checks.close_match(name, [*_SETTINGS, "pre_mutation"])
            hint = f"did you mean {close!r}?" if close else f"known: {', '.join(_SETTINGS)}"
            raise ConfigError(f"{display}:{line}: unknown setting {name!r} ({hint}; names starting with _ "
                              "are private)")
    values = {name: check(f"{display}: {name}", getattr(module, name))
              for name, check in _SETTINGS.items() if hasattr(module, name)}
    hook = getattr(module, "pre_mutation", None)
    if hook is not None and not callable(hook):
        raise ConfigError(f"{display}: pre_mutation must be a function, got {type(hook).__name__}")
    return Policy(source=display, pre_mutation=hook, **values)


def _assigned_names(path: Path) -> list[tuple[str, int]]:
    """Names the file's top-level statements assign (also inside a top-level `if`, `try`, `with` or
    `for`), with their lines; imports, functions and classes are not assignments."""
    found: list[tuple[str, int]] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
                continue
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For)) else [])
            for target in targets:
                found.extend(_bound_names(target))
            for field_name in ("body", "orelse", "finalbody"):
                visit(getattr(node, field_name, []))
            for handler in getattr(node, "handlers", []):
                visit(handler.body)

    visit(ast.parse(path.read_bytes(), filename=str(path)).body)
    return found


def _bound_names(target: ast.expr) -> list[tuple[str, int]]:
    """The names an assignment target binds: `a`, `a, (b, *c)`; not `os.environ["X"]` or `obj.attr`."""
    if isinstance(target, ast.Name):
        return [(target.id, target.lineno)]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [bound for element in target.elts for bound in _bound_names(element)]
    if isinstance(target, ast.Starred):
        return _bound_names(target.value)
    return []


def _exec_module(path: Path, display: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("mutmut_config", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ConfigError(f"{display}:{exc.lineno}: syntax error: {exc.msg}") from exc
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: a policy must not end the run, least of all with 0
        raise ConfigError(f"{display}:{_failing_line(exc, path)}: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop("mutmut_config", None)
    return module


def ask_pre_mutation(policy: Policy, context: MutationContext) -> str | None:
    """Run the hook for one candidate; the skip reason, or None to keep the mutant."""
    if policy.pre_mutation is None:
        return None
    try:
        returned = policy.pre_mutation(context)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too
        raise ConfigError(
            f"{policy.source}: pre_mutation raised {type(exc).__name__}: {exc} "
            f"(for {context.mutant_name} at {context.filename}:{context.current_line_index + 1})") from exc
    if returned is not None:
        raise ConfigError(f"{policy.source}: pre_mutation must return None and set context.skip, "
                          f"it returned {returned!r}")
    skip = context.skip
    if skip is False:
        return None
    if skip is True:
        return f"skipped by {policy.source} pre_mutation (no reason given)"
    if isinstance(skip, str) and skip.strip():
        return skip.strip()
    raise ConfigError(f"{policy.source}: pre_mutation set context.skip to {skip!r}; "
                      "use True, False or a string saying why")


def _failing_line(exc: BaseException, path: Path) -> int | str:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename) == path:
            return frame.lineno or "?"
    return "?"
