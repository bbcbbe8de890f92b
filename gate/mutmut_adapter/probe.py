"""`python -P -m gate.mutmut_adapter.probe SPEC OUT`: what a survivor's tests could have seen.

For each surviving mutant, its covering tests run twice in this process, in mutmut's mutated copy:
on the original (no mutant under test) and on the mutant. A wrapper around the function mutmut's
trampoline calls (the original, then the mutant) records, at each call's exit, what a test could
observe: the value returned or the exception raised (type, message, `__cause__`), the attributes
of `self` and the module's globals as they are then, the log records emitted during the call, and
the calls made to `unittest.mock` objects it was given or holds. The original runs twice, so that
`gate.steps.explain` can tell an effect of the mutant from what differs between any two runs (a
clock, a random draw the seeds do not reach), and compares. Values are described, not kept: a type and a short text, never an address.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import io
import json
import logging
import os
import random
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from gate.mutmut_adapter import internals as mutmut

LIMIT = 120
RUN_SECONDS = 120
"""The most one run of a survivor's tests may take."""


ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def describe(value: Any) -> str:
    """A value as a reader would name it, the same in two runs: a short repr for plain data (an
    object's address in it left out), the type (and shape) for anything else. Never raises."""
    try:
        return _describe(value)
    except Exception:  # a value that cannot even be looked at is named by its type
        return f"a {type(value).__name__}"


def _describe(value: Any) -> str:
    if isinstance(value, mock.NonCallableMock):
        return f"a {type(value).__name__}"
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        text = ADDRESS.sub("", repr(value))
        return text if len(text) <= LIMIT else text[:LIMIT] + "..."
    if isinstance(value, (list, tuple, set, frozenset, dict)) and len(value) <= 8:
        items = value.items() if isinstance(value, dict) else value
        inner = [f"{describe(k)}: {describe(v)}" for k, v in items] if isinstance(value, dict) \
            else [describe(v) for v in items]
        text = {dict: "{%s}", list: "[%s]", tuple: "(%s)"}.get(type(value), type(value).__name__ + "({%s})")
        return text % ", ".join(inner)
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        return f"a {type(value).__name__} of {len(value)}"
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"a {type(value).__name__} of shape {tuple(shape)} ({dtype})"
    if isinstance(value, BaseException):
        return f"{type(value).__name__}({describe(str(value))})"
    return f"a {type(value).__name__}"


def _state(obj: Any) -> dict[str, str]:
    try:
        attributes = vars(obj)
    except TypeError:
        return {}
    return {name: describe(value) for name, value in attributes.items()
            if not name.startswith("__") and not _code(value)}


def _code(value: Any) -> bool:
    """A function, method, class or module: code, not state (a model object is state, callable or not)."""
    return inspect.isroutine(value) or inspect.isclass(value) or inspect.ismodule(value)


def _module_state(module: Any) -> dict[str, str]:
    return {name: describe(value) for name, value in vars(module).items()
            if not name.startswith("_") and not name.startswith(("mutants_", "x_", "xǁ"))
            and isinstance(value, (type(None), bool, int, float, str, tuple))}


def _mocks(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], module: Any) -> dict[str, mock.NonCallableMock]:
    """The `unittest.mock` objects a call can reach: among its arguments, `self`'s attributes, the
    module's globals, and what the function's code names through them (`torch.cuda.empty_cache`
    patched in a test is reached as the global `torch`, then `cuda`, then `empty_cache`)."""
    found = {}
    holders = [("argument", dict(enumerate(args))), ("argument", kwargs)]
    if args:
        with contextlib.suppress(TypeError):
            holders.append(("self", vars(args[0])))
    holders.append(("global", vars(module)))
    for kind, values in holders:
        for name, value in values.items():
            if isinstance(value, mock.NonCallableMock):
                found[f"{kind} {name}"] = value
    names = _code_names(getattr(fn, "__code__", None))
    paths = [(name, getattr(module, name)) for name in names if inspect.ismodule(getattr(module, name, None))]
    for _ in range(2):  # two attributes deep: a module's submodule's function
        deeper = []
        for path, obj in paths:
            for name in names:
                value = getattr(obj, name, None) if inspect.ismodule(obj) else None
                if isinstance(value, mock.NonCallableMock):
                    found[f"global {path}.{name}"] = value
                elif inspect.ismodule(value):
                    deeper.append((f"{path}.{name}", value))
        paths = deeper
    return found


def _code_names(code: Any) -> set[str]:
    """The global and attribute names a function's code (nested code included) uses."""
    if code is None:
        return set()
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _code_names(const)
    return names


def _held(args: tuple[Any, ...], kwargs: dict[str, Any], self_type: str) -> dict[str, Any]:
    """The objects a call can change besides `self`: those `self`'s attributes hold as the call
    begins, and its other arguments; each by where the call found it."""
    found: dict[str, Any] = {}
    if args:
        with contextlib.suppress(TypeError):
            for name, value in vars(args[0]).items():
                if _has_state(value):
                    found[f"{self_type}.{name}"] = value
    for index, value in enumerate(args[1:], 1):
        if _has_state(value):
            found[f"argument {index}"] = value
    for name, value in kwargs.items():
        if _has_state(value):
            found[f"argument {name}"] = value
    return found


def _has_state(value: Any) -> bool:
    return hasattr(value, "__dict__") and not _code(value) and not isinstance(value, mock.NonCallableMock)


def _stable(text: str) -> str:
    """A mock call's text without what differs between runs: addresses and mock ids."""
    return re.sub(r" id='\d+'", "", ADDRESS.sub("", text))


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # bad arguments: logging itself would report and go on
            message = str(record.msg)
        self.seen.append(f"{record.levelname} {describe(message)}")


class Recorder:
    """Wraps the functions the trampolines call and keeps what each call left, by test."""

    def __init__(self) -> None:
        self.test = ""
        self.calls: dict[str, list[dict[str, Any]]] = {}

    def wrap(self, fn: Any, module: Any) -> Any:
        recorder = self

        def before(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
            try:
                return _before(args, kwargs)
            except Exception:  # the recorder never breaks the test it watches
                return None

        def after(args: tuple[Any, ...], state: tuple[Any, ...] | None, outcome: dict[str, Any]) -> None:
            try:
                if state is None:
                    raise ValueError("nothing recorded at the call's start")
                _after(args, state, outcome)
            except Exception as exc:
                recorder.calls.setdefault(recorder.test, []).append({"unobserved": f"{type(exc).__name__}: {exc}"})

        def _before(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
            handler = _Records()
            logging.getLogger().addHandler(handler)
            mocks = _mocks(fn, args, kwargs, module)
            held = _held(args, kwargs, type(args[0]).__name__ if args else "")
            return handler, mocks, {name: len(m.mock_calls) for name, m in mocks.items()}, held

        def _after(args: tuple[Any, ...], state: tuple[Any, ...], outcome: dict[str, Any]) -> None:
            handler, mocks, counts, held = state
            logging.getLogger().removeHandler(handler)
            outcome.update(
                self_type=type(args[0]).__name__ if args else "", self=_state(args[0]) if args else {},
                held={path: {"type": type(obj).__name__, "state": _state(obj)} for path, obj in held.items()},
                globals=_module_state(module), logs=handler.seen,
                mocks={name: [_stable(str(c)) for c in m.mock_calls[counts[name]:]] for name, m in mocks.items()})
            recorder.calls.setdefault(recorder.test, []).append(outcome)

        def raised(exc: BaseException) -> dict[str, Any]:
            cause = exc.__cause__
            return {"raised": describe(exc), "cause": describe(cause) if cause is not None else None}

        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            @functools.wraps(fn)
            def unobservable(*args: Any, **kwargs: Any) -> Any:
                recorder.calls.setdefault(recorder.test, []).append(
                    {"unobserved": "a generator: its body runs as it is iterated, after the call's exit"})
                return fn(*args, **kwargs)
            return unobservable

        @contextlib.contextmanager
        def watching(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
            """What one call leaves, recorded at its exit (returned or raised) whatever ends it."""
            state, outcome = before(args, kwargs), {}
            try:
                yield outcome
            except BaseException as exc:
                outcome.update(raised(exc))
                raise
            finally:
                after(args, state, outcome)

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def observed_async(*args: Any, **kwargs: Any) -> Any:
                with watching(args, kwargs) as outcome:
                    result = await fn(*args, **kwargs)
                    outcome["returned"] = describe(result)
                    return result
            return observed_async

        @functools.wraps(fn)
        def observed(*args: Any, **kwargs: Any) -> Any:
            with watching(args, kwargs) as outcome:
                result = fn(*args, **kwargs)
                outcome["returned"] = describe(result)
                return result
        return observed


class _Plugin:
    """Points the recorder at each test as it starts; wraps the targets once per process, when
    the first test starts (by then the tests imported the mutated copy)."""

    wrapped: set[tuple[str, str]] = set()
    """(module, table entry) already wrapped: a function's original is shared by its mutants."""

    def __init__(self, recorder: Recorder, targets: list[tuple[str, str]]) -> None:
        self.recorder, self.targets = recorder, targets

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.recorder.test = nodeid
        for module_name, key in self.targets:
            module = importlib.import_module(module_name)
            table_name = mutmut.mutants_table(key)
            table = getattr(module, table_name)
            for entry in (mutmut.ORIGINAL_KEY, key):
                if (module_name, f"{table_name}[{entry}]") not in self.wrapped:
                    self.wrapped.add((module_name, f"{table_name}[{entry}]"))
                    table[entry] = self.recorder.wrap(table[entry], module)


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    import pytest

    from gate.mutmut_adapter.runner import _import_from_mutants

    os.environ["PY_IGNORE_IMPORTMISMATCH"] = "1"
    mutmut.setup_source_paths()
    _import_from_mutants(spec["import_roots"])
    os.chdir(mutmut.MUTANTS_DIR)
    args = ["-p", "no:cacheprovider", "-q", "--rootdir=.", *spec["pytest_args"]]
    # import the code and the tests once (torch among them); each run then forks from here, so
    # that no run sees what an earlier one left behind (a cache, a counter, a patched global)
    all_tests = sorted({t for tests in spec["survivors"].values() for t in tests})
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        pytest.main([*args, "--collect-only", *all_tests])
    observed: dict[str, Any] = {}
    originals: dict[tuple[str, str, tuple[str, ...]], dict[str, Any]] = {}
    for name, tests in spec["survivors"].items():
        module_name, _, short = name.rpartition(".")
        # the original's run is the same for every mutant of a function with the same tests
        same_original = (module_name, mutmut.mutants_table(short), tuple(tests))
        if same_original not in originals:
            # twice: what differs between two runs of the same code (a clock, an id) is no effect
            originals[same_original] = (_forked_run(args, tests, "", module_name, short),
                                        _forked_run(args, tests, "", module_name, short))
        original, again = originals[same_original]
        observed[name] = {"original": original, "original_again": again,
                          "mutant": _forked_run(args, tests, name, module_name, short)}
    return observed


def _same_seeds() -> None:
    """The same random draws in the original's run as in the mutant's (a random-replacement cache
    evicts the same key in both), for the generators the code may use."""
    random.seed(0)
    for name, seed in (("numpy.random", "seed"), ("torch", "manual_seed")):
        module = sys.modules.get(name)
        if module is not None:
            getattr(module, seed)(0)


def _forked_run(args: list[str], tests: list[str], under_test: str, module_name: str, short: str) -> dict[str, Any]:
    """The tests run in a child forked from this process, with `under_test` as mutmut's mutant."""
    import pytest

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report, and leave without unwinding into the parent's code
        os.close(read)
        code = 3
        recorder = Recorder()
        try:
            signal.alarm(RUN_SECONDS)  # a run that hangs is stopped, and comes back empty
            os.environ["MUTANT_UNDER_TEST"] = under_test
            _same_seeds()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                code = int(pytest.main([*args, *tests], plugins=[_Plugin(recorder, [(module_name, short)])]))
        finally:
            with os.fdopen(write, "w") as out:
                out.write(json.dumps({"exit_code": code, "calls": recorder.calls}))
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as child:
        text = child.read()
    os.waitpid(pid, 0)
    return json.loads(text) if text else {"exit_code": -1, "calls": {}}


if __name__ == "__main__":
    spec_path, out_path = sys.argv[1:3]
    result = probe(json.loads(Path(spec_path).read_text()))
    Path(out_path).write_text(json.dumps(result))
