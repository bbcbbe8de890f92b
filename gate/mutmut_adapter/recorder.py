"""What one call of a probed function left that a test could have read, recorded without changing
what it observes.

The recorder wraps the function (the original and the mutant, in mutmut's trampoline table) and
keeps, per test, a description of each call: the value returned or the exception raised (its type
and message, `__cause__`, `__context__`, `__suppress_context__` and the functions its traceback
passes through), the attributes of `self` and of the objects the call was given or found in `self`
(at the call's exit and again at the test's end, when a callback it registered may have run), the
module's plain globals, the log records emitted and the calls made to the mocks it can reach. A
function the call returned that was defined inside it (a decorator's wrapper, a callback) is
watched too, since its calls are the function's behaviour.

It holds no strong reference to anything the code under test may release: what it needs at the
call's start is described or kept as a weak reference, and no argument, frame or traceback outlives
the call through it. Values are descriptions (a type and a short text, never an address).

While a test runs, each call's record is a dict the recorder fills in as the call goes (its keys
are this module's alone: `_as_call` reads them); `observed` gives a test's calls as the typed
`gate.wire.probe.Call` values that the probe compares and sends across its pipes."""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import logging
import re
import sys
import threading
import weakref
from collections.abc import Iterator
from typing import Any
from unittest import mock

from gate.mutmut_adapter import internals as mutmut
from gate.mutmut_adapter.naming import is_mutmut_global
from gate.wire.probe import Call, End, Held, Site

DESCRIPTION_CHARACTERS = 120
"""The longest description of a plain value kept whole."""

ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_OPTIMIZED = inspect.CO_OPTIMIZED


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
        return text if len(text) <= DESCRIPTION_CHARACTERS else text[:DESCRIPTION_CHARACTERS] + "..."
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
    """An object's attributes, described: its `__dict__`, or the slots its classes declare."""
    try:
        attributes = dict(vars(obj))
    except TypeError:
        slots = {s for cls in type(obj).__mro__ for s in _slots(cls)}
        attributes = {s: getattr(obj, s) for s in sorted(slots) if hasattr(obj, s)}
    return {name: describe(value) for name, value in attributes.items()
            if not name.startswith("__") and not _code(value)}


def _slots(cls: type) -> tuple[str, ...]:
    slots = vars(cls).get("__slots__", ())
    return (slots,) if isinstance(slots, str) else tuple(slots)


def _code(value: Any) -> bool:
    """A function, method, class or module: code, not state (a model object is state, callable or not)."""
    return inspect.isroutine(value) or inspect.isclass(value) or inspect.ismodule(value)


def _module_state(module: Any) -> dict[str, str]:
    return {name: describe(value) for name, value in list(vars(module).items())
            if not name.startswith("_") and not is_mutmut_global(name)
            and isinstance(value, (type(None), bool, int, float, str, tuple))}


def _weak(value: Any) -> Any:
    """A weak reference to `value`, or None where it takes none: then it is not held at all."""
    try:
        return weakref.ref(value)
    except TypeError:
        return None


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
        for name, value in list(values.items()):
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


def _nested_codes(code: Any) -> set[Any]:
    """The code of every function defined inside `code`, however deep."""
    found = set()
    for const in getattr(code, "co_consts", ()):
        if inspect.iscode(const):
            found |= {const, *_nested_codes(const)}
    return found


def _held(args: tuple[Any, ...], kwargs: dict[str, Any], self_type: str) -> dict[str, tuple[str, Any]]:
    """The objects a call can change besides `self`: those `self`'s attributes hold as the call
    begins, and its other arguments; each by where the call found it, as (type, weak reference).
    One that takes no weak reference is left out: holding it could keep alive what the code frees."""
    found: dict[str, Any] = {}
    if args:
        with contextlib.suppress(TypeError):
            found.update((f"{self_type}.{name}", value) for name, value in list(vars(args[0]).items()))
    found.update((f"argument {index}", value) for index, value in enumerate(args[1:], 1))
    found.update((f"argument {name}", value) for name, value in kwargs.items())
    held = {}
    for path, value in found.items():
        if _has_state(value):
            ref = _weak(value)
            if ref is not None:
                held[path] = (type(value).__name__, ref)
    return held


def _has_state(value: Any) -> bool:
    return hasattr(value, "__dict__") and not _code(value) and not isinstance(value, mock.NonCallableMock)


def _stable(text: str) -> str:
    """A mock call's text without what differs between runs: addresses and mock ids."""
    return re.sub(r" id='\d+'", "", ADDRESS.sub("", text))


def _frames(tb: Any) -> list[str]:
    """The functions a traceback passes through, by the names a reader knows (mutmut's copies of
    a function and the gate's own wrappers left out, as a test without them would see it)."""
    names = []
    while tb is not None:
        code = tb.tb_frame.f_code
        if not code.co_filename.endswith((__file__, *mutmut.TRAMPOLINE_FILES)):
            names.append(mutmut.plain_function_name(code.co_name))
        tb = tb.tb_next
    return names


def exception_shape(exc: BaseException) -> dict[str, Any]:
    """What a test can assert about a raised exception."""
    cause, context = exc.__cause__, exc.__context__
    return {"raised": describe(exc), "cause": describe(cause) if cause is not None else None,
            "context": describe(context) if context is not None else None,
            "suppress_context": bool(exc.__suppress_context__), "frames": _frames(exc.__traceback__)}


_PLAIN_RECORD = {*vars(logging.makeLogRecord({})), "message", "asctime", "taskName"}
"""A log record's own attributes: any other was given as `extra=`, which a test can read too."""


class _Records(logging.Handler):
    """The records logged during one call, from whichever logger: it listens on the root logger and
    on every logger that does not propagate (`assertLogs` and `caplog` make theirs so), where each
    record ends its way up, so that it sees each record once."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []
        self.loggers = [logging.getLogger(), *(found for found in list(logging.Logger.manager.loggerDict.values())
                                               if isinstance(found, logging.Logger) and not found.propagate)]
        for logger in self.loggers:
            logger.addHandler(self)

    def detach(self) -> None:
        for logger in self.loggers:
            logger.removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # bad arguments: logging itself would report and go on
            message = str(record.msg)
        extra = {name: describe(value) for name, value in vars(record).items() if name not in _PLAIN_RECORD}
        self.seen.append(f"{record.levelname} {describe(message)}" + (f" with {extra}" if extra else ""))


class _Start:
    """What one call needs from its start until its exit: descriptions and weak references only."""

    def __init__(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], module: Any) -> None:
        self.self_type = type(args[0]).__name__ if args else ""
        self.self_ref = _weak(args[0]) if args else None
        mocks = _mocks(fn, args, kwargs, module)
        self.mock_refs = {name: weakref.ref(m) for name, m in mocks.items()}
        self.mock_counts = {name: len(m.mock_calls) for name, m in mocks.items()}
        self.held = _held(args, kwargs, self.self_type)
        self.handler = _Records()  # last: nothing above may fail with it attached


class Recorder:
    """Wraps the functions the trampolines call and keeps what each call left, by test."""

    def __init__(self) -> None:
        self.test = ""
        self.test_code: Any = None
        """The code of the running test's function: where its statement that made a call is found."""
        self.calls: dict[str, list[dict[str, Any]]] = {}
        self._open: list[tuple[dict[str, Any], Any, dict[str, tuple[str, Any]]]] = []
        self._coroutine: Any = None

    def start_test(self, nodeid: str, code: Any) -> None:
        self.test, self.test_code, self._open, self._coroutine = nodeid, code, [], None

    def finish_test(self) -> None:
        """At the test's end (before its teardown): `self` and the held objects of each of its
        calls again, through weak references: what a callback registered by the call did shows here."""
        for outcome, self_ref, held in self._open:
            try:
                obj = self_ref() if self_ref is not None else None
                outcome["end"] = {"self": _state(obj) if obj is not None else {}, "freed": obj is None,
                                  "held": {path: _held_state(kind, ref) for path, (kind, ref) in held.items()}}
            except Exception as exc:  # the recorder never breaks the test it watches
                outcome["unobserved"] = f"{type(exc).__name__}: {exc}"
        self._open = []

    def observed(self, test: str) -> tuple[Call, ...]:
        """What each call `test` made left, in the order of the calls (none: it made no call)."""
        return tuple(_as_call(record) for record in self.calls.get(test, ()))

    def wrap(self, fn: Any, module: Any, via: str = "") -> Any:
        """`fn`, recording each call it is given (`via`: how the call reached it, when not directly)."""
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            return self._unobservable(fn, via)
        if inspect.iscoroutinefunction(fn):
            return self._wrap_coroutine(fn, module, via)
        return self._wrap_function(fn, module, via)

    def _unobservable(self, fn: Any, via: str) -> Any:
        recorder = self

        @functools.wraps(fn)
        def unobservable(*args: Any, **kwargs: Any) -> Any:
            recorder.calls.setdefault(recorder.test, []).append(
                {"via": via, "unobserved": "a generator: its body runs as it is iterated, after the call's exit"})
            return fn(*args, **kwargs)
        return unobservable

    def _wrap_coroutine(self, fn: Any, module: Any, via: str) -> Any:
        recorder, nested = self, _nested_codes(getattr(fn, "__code__", None))

        @functools.wraps(fn)
        async def observed_async(*args: Any, **kwargs: Any) -> Any:
            with recorder.watching(fn, module, via, args, kwargs) as outcome:
                result = await fn(*args, **kwargs)
                outcome["returned"] = describe(result)
            return recorder._returned(result, nested, module, via)
        return observed_async

    def _wrap_function(self, fn: Any, module: Any, via: str) -> Any:
        recorder, nested = self, _nested_codes(getattr(fn, "__code__", None))

        @functools.wraps(fn)
        def observed(*args: Any, **kwargs: Any) -> Any:
            with recorder.watching(fn, module, via, args, kwargs) as outcome:
                result = fn(*args, **kwargs)
                outcome["returned"] = describe(result)
            return recorder._returned(result, nested, module, via)
        return observed

    def _returned(self, result: Any, nested: set[Any], module: Any, via: str) -> Any:
        """A function defined inside the wrapped one (its code in `nested`) that it returned is
        watched as well."""
        if inspect.isfunction(result) and result.__code__ in nested:
            return self.wrap(result, module, f"{via}{' > ' if via else ''}the function {result.__name__} it returned")
        return result

    @contextlib.contextmanager
    def watching(self, fn: Any, module: Any, via: str, args: tuple[Any, ...], kwargs: dict[str, Any]
                 ) -> Iterator[dict[str, Any]]:
        """What one call leaves, recorded at its exit (returned or raised) whatever ends it."""
        outcome: dict[str, Any] = {"via": via}
        try:
            start: _Start | None = _Start(fn, args, kwargs, module)
            outcome["site"] = self._site(args[0] if args else None, start.mock_refs)  # type: ignore[union-attr]
        except Exception as exc:  # the recorder never breaks the test it watches
            start, outcome["unobserved"] = None, f"{type(exc).__name__}: {exc}"
        try:
            yield outcome
        except BaseException as exc:
            with contextlib.suppress(Exception):
                outcome.update(exception_shape(exc))
            del exc  # no traceback (and so no frame of the call) kept by the recorder
            raise
        finally:
            if start is not None:
                self._exit(start, module, outcome, args[0] if args else None)
            self.calls.setdefault(self.test, []).append(outcome)

    def _exit(self, start: _Start, module: Any, outcome: dict[str, Any], obj: Any) -> None:
        """What the call left, as it exits (`obj`, its `self`, is alive still: the call holds it)."""
        try:
            start.handler.detach()
            mocks = {name: ref() for name, ref in start.mock_refs.items()}
            outcome.update(
                self_type=start.self_type, self=_state(obj) if obj is not None else {},
                held={path: _held_state(kind, ref) for path, (kind, ref) in start.held.items()},
                globals=_module_state(module), logs=start.handler.seen,
                mocks={name: [_stable(str(c)) for c in m.mock_calls[start.mock_counts[name]:]]
                       for name, m in mocks.items() if m is not None})
            self._open.append((outcome, start.self_ref, start.held))
        except Exception as exc:  # the recorder never breaks the test it watches
            outcome["unobserved"] = f"{type(exc).__name__}: {exc}"

    def _site(self, target: Any, mock_refs: dict[str, Any]) -> dict[str, Any] | None:
        """Where the running test made this call: its line, and the names the test has there for
        the call's `self` and mocks (`engine`, `self.engine`, `spies.cuda`); None when its frame is
        not found (a call made at collection, in a fixture, or in a thread the test does not wait in)."""
        frame, direct = self._test_frame()
        if frame is None:
            return None
        try:
            targets = {"self": target, **{name: ref() for name, ref in mock_refs.items()}}
            return {"line": frame.f_lineno, "direct": direct,
                    "names": _names_in(frame, {k: v for k, v in targets.items() if v is not None})}
        finally:
            del frame

    def _test_frame(self) -> tuple[Any, bool]:
        """The running test function's frame, and whether it called the function directly."""
        code = self.test_code
        if code is None:
            return None, False
        here = sys._getframe(1)
        own = next((f for f in _walk(here) if not _plumbing(f)), None)
        if own is not None and own.f_code is code:
            return own, True
        stacks = [here]
        main = sys._current_frames().get(threading.main_thread().ident or -1)
        if main is not None and threading.current_thread() is not threading.main_thread():
            stacks.append(main)
        for frame in (f for top in stacks for f in _walk(top)):
            if frame.f_code is code:
                return frame, False
        if not code.co_flags & inspect.CO_COROUTINE:
            return None, False
        # an async test waiting on the call (made in a worker thread): its suspended coroutine,
        # looked for once per test
        if self._coroutine is None:
            coroutine = next((o for o in gc.get_objects() if inspect.iscoroutine(o) and o.cr_code is code
                              and o.cr_frame is not None), None)
            self._coroutine = _weak(coroutine) if coroutine is not None else _NOT_FOUND
        coroutine = self._coroutine()
        frame = coroutine.cr_frame if coroutine is not None else None
        return frame, False


def _NOT_FOUND() -> None:
    """What `Recorder._coroutine` holds once a test's coroutine was looked for and not found."""
    return None


def _plumbing(frame: Any) -> bool:
    """A frame of the recorder, of `contextlib` or of mutmut's trampoline: between a test and its call."""
    name = frame.f_code.co_filename
    return name.endswith((__file__, *mutmut.TRAMPOLINE_FILES)) or name == contextlib.__file__


def _walk(frame: Any) -> Iterator[Any]:
    while frame is not None:
        yield frame
        frame = frame.f_back


def _held_state(kind: str, ref: Any) -> dict[str, Any]:
    obj = ref()
    return {"type": kind, "state": _state(obj)} if obj is not None else {"type": kind, "freed": True}


def _as_call(record: dict[str, Any]) -> Call:
    """A call's record as the typed value the probe compares: what the record lacks, the call did
    not leave (an exception where it returned, its state where it could not be recorded)."""
    end, site, frames = record.get("end"), record.get("site"), record.get("frames")
    return Call(via=record["via"], unobserved=record.get("unobserved"), site=None if site is None else Site(**site),
                returned=record.get("returned"), raised=record.get("raised"), cause=record.get("cause"),
                context=record.get("context"), suppress_context=record.get("suppress_context"),
                frames=None if frames is None else tuple(frames), self_type=record.get("self_type", ""),
                self_state=record.get("self", {}), held=_as_held(record.get("held", {})),
                globals=record.get("globals", {}), logs=tuple(record.get("logs", ())),
                mocks={name: tuple(calls) for name, calls in record.get("mocks", {}).items()},
                end=None if end is None else End(self_state=end["self"], freed=end["freed"],
                                                 held=_as_held(end["held"])))


def _as_held(held: dict[str, dict[str, Any]]) -> dict[str, Held]:
    return {path: Held(type=h["type"], freed=bool(h.get("freed")), state=h.get("state", {}))
            for path, h in held.items()}


def _names_in(frame: Any, targets: dict[str, Any]) -> dict[str, str]:
    """For each target, an expression the test's frame has for it: a local (`engine`), or a
    local's attribute (`self.engine`, `spies.cuda`). The frame's locals are read and let go: on
    Python 3.11 and 3.12 reading them leaves a copy on the frame, which would keep alive a value
    the test then deletes, so the copy is emptied again."""
    local = frame.f_locals
    try:
        found: dict[str, str] = {}
        values = list(local.items())
        # a local (`engine`), a local's attribute (`self.engine`), or one more (`self.spies.cuda`)
        paths = [(n, v) for n, v in values]
        for _ in range(3):
            for key, target in targets.items():
                if key not in found:
                    name = next((n for n, v in paths if v is target), None)
                    if name is not None:
                        found[key] = name
            if len(found) == len(targets):
                break
            paths = [(f"{n}.{a}", w) for n, v in paths if _has_state(v) for a, w in _attributes(v) if a.isidentifier()]
        del values, paths
        return found
    finally:
        if type(local) is dict and frame.f_code.co_flags & _OPTIMIZED:
            local.clear()


def _attributes(value: Any) -> list[tuple[str, Any]]:
    try:
        return [(a, w) for a, w in vars(value).items() if not a.startswith("_")]
    except TypeError:
        return []
