"""A leak-check oracle for error-path tests: `no_leaks`, a context manager and a decorator.

It snapshots what an error path most often forgets to release, runs the code, collects garbage,
snapshots again and fails with one `AssertionError` that names each leak and its size:

    AssertionError: leaked 1 thread (worker-3), 2 file descriptors (/tmp/x, pipe:[81]), 3 tensors
    (float32[2, 8] on cpu, ...)

- threads: the live Python threads (`threading.enumerate()`), named by thread name;
- file descriptors: the open descriptors of the process (`/proc/self/fd`, or `/dev/fd`), named by
  what they point to; skipped where neither folder exists;
- tensors: the `torch.Tensor` objects the garbage collector tracks, counted only if torch was
  imported before the check began (this module never imports torch);
- CUDA memory: `torch.cuda.memory_allocated()` summed over the devices, counted only once CUDA is
  initialised (before initialisation this process holds none).

Each resource has a tolerance (how much growth still passes), zero by default. If the checked
code raises, its exception propagates unchanged and nothing is checked: the test already failed.
`async with` (and the decorator on a coroutine function) first gives the event loop one turn, so
callbacks it has already scheduled let go of what they hold. Names still bound when a `with`
block ends are alive: `del` them, or check a whole function with the decorator.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import gc
import inspect
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["no_leaks", "LeakCheck", "Resources", "take_snapshot"]

F = TypeVar("F", bound=Callable[..., Any])

_SHOWN = 5  # at most this many leaked items are named per resource

# bound once, so a test that spies on `gc.collect` (to count the code's own calls) never counts ours
_collect = gc.collect


@dataclass(frozen=True)
class Resources:
    """What one snapshot saw. `fds` is None where the platform cannot list descriptors, `tensors`
    None where torch is not imported; `tensor_ids` only names new tensors in a message."""

    threads: tuple[threading.Thread, ...]
    fds: tuple[str, ...] | None
    tensors: int | None
    tensor_ids: frozenset[int]
    cuda_bytes: int


def _fd_targets() -> tuple[str, ...] | None:
    """What each open descriptor points to (`fd N` where the platform cannot say). The listing's
    own descriptor is closed by the time it is read, so it is left out."""
    for folder, named in (("/proc/self/fd", True), ("/dev/fd", False)):
        if not os.path.isdir(folder):
            continue
        targets = []
        for name in os.listdir(folder):
            try:
                targets.append(os.readlink(os.path.join(folder, name)) if named else _fstat_name(name))
            except OSError:
                continue
        return tuple(targets)
    return None


def _fstat_name(name: str) -> str:
    os.fstat(int(name))  # raises OSError for the listing's closed descriptor
    return f"fd {name}"


def _live_tensors(torch: Any) -> dict[int, Any]:
    # type() rather than isinstance(): isinstance reads `__class__`, which some torch objects
    # turn into a deprecation warning
    tensor = torch.Tensor
    return {id(obj): obj for obj in gc.get_objects() if issubclass(type(obj), tensor)}


def _cuda_bytes(torch: Any) -> int:
    if torch is None or not torch.cuda.is_initialized():
        return 0
    torch.cuda.synchronize()
    return sum(torch.cuda.memory_allocated(device) for device in range(torch.cuda.device_count()))


def take_snapshot(*, count_tensors: bool = True) -> Resources:
    """Collect garbage, then record the threads, descriptors, tensors and CUDA bytes now alive."""
    _collect()
    torch = sys.modules.get("torch")
    tensors = _live_tensors(torch) if torch is not None and count_tensors else None
    return Resources(
        threads=tuple(threading.enumerate()),
        fds=_fd_targets(),
        tensors=None if tensors is None else len(tensors),
        tensor_ids=frozenset(tensors or ()),
        cuda_bytes=_cuda_bytes(torch),
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _named(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return f" ({shown}, ...)" if len(items) > _SHOWN else (f" ({shown})" if items else "")


def _describe_tensor(obj: Any) -> str:
    dtype = str(obj.dtype).removeprefix("torch.")
    return f"{dtype}[{', '.join(map(str, obj.shape))}] on {obj.device}"


class LeakCheck:
    """`with LeakCheck():` (or `async with`, which first lets the event loop run the callbacks it
    has already scheduled) checks one block; `@LeakCheck()` checks every call of a function or
    coroutine function, each call against what was open when it began. `no_leaks` builds one."""

    def __init__(self, *, threads: int = 0, fds: int = 0, tensors: int = 0, cuda_bytes: int = 0) -> None:
        for name, value in (("threads", threads), ("fds", fds), ("tensors", tensors), ("cuda_bytes", cuda_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"no_leaks: the tolerance {name} must be an integer >= 0, got {value!r}")
        self.tolerance = {"threads": threads, "fds": fds, "tensors": tensors, "cuda_bytes": cuda_bytes}
        self.label = ""
        self._before: list[Resources] = []  # a stack, so one check object may be nested or reused

    # ------------------------------------------------------------------------ context manager

    def __enter__(self) -> LeakCheck:
        self._before.append(take_snapshot())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        before = self._before.pop()
        if exc_type is not None:
            return  # the block failed already; its own error is the one to see
        counted = before.tensors is not None
        if self._exceeded(before, take_snapshot(count_tensors=counted)):
            # garbage that a finalizer let go only in the first pass is not a leak: one more pass
            self.check(before, take_snapshot(count_tensors=counted))

    async def __aenter__(self) -> LeakCheck:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            # one turn of the event loop first: callbacks it has already scheduled (the done
            # callbacks of a finished future, say) still hold their results until they run
            await asyncio.sleep(0)
        self.__exit__(exc_type, exc, tb)

    # ------------------------------------------------------------------------------ decorator

    def __call__(self, func: F) -> F:
        tolerance, label = dict(self.tolerance), f"{func.__qualname__} "

        def fresh() -> LeakCheck:  # one check per call: concurrent calls keep their own starting counts
            check = LeakCheck(**tolerance)
            check.label = label
            return check

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with fresh():
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with fresh():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    # ---------------------------------------------------------------------------------- verdict

    def check(self, before: Resources, after: Resources) -> None:
        """Raise an `AssertionError` naming every resource that grew beyond its tolerance."""
        leaks = self._leaks(before, after)
        if leaks:
            raise AssertionError(f"{self.label}leaked " + ", ".join(leaks))

    def _exceeded(self, before: Resources, after: Resources) -> bool:
        """Whether any resource grew beyond its tolerance (counts only: naming costs a gc scan)."""
        grown = {
            "threads": len(after.threads) - len(before.threads),
            "fds": 0 if before.fds is None or after.fds is None else len(after.fds) - len(before.fds),
            "tensors": 0 if before.tensors is None or after.tensors is None else after.tensors - before.tensors,
            "cuda_bytes": after.cuda_bytes - before.cuda_bytes,
        }
        return any(grown[name] > self.tolerance[name] for name in grown)

    def _leaks(self, before: Resources, after: Resources) -> list[str]:
        found = (
            self._threads(before, after),
            self._fds(before, after),
            self._tensors(before, after),
            self._cuda(before, after),
        )
        return [line for line in found if line]

    def _threads(self, before: Resources, after: Resources) -> str:
        grown = len(after.threads) - len(before.threads)
        if grown <= self.tolerance["threads"]:
            return ""
        old = set(before.threads)
        return _plural(grown, "thread") + _named([t.name for t in after.threads if t not in old])

    def _fds(self, before: Resources, after: Resources) -> str:
        if before.fds is None or after.fds is None:
            return ""
        grown = len(after.fds) - len(before.fds)
        if grown <= self.tolerance["fds"]:
            return ""
        new = collections.Counter(after.fds) - collections.Counter(before.fds)
        return _plural(grown, "file descriptor") + _named(sorted(new.elements()))

    def _tensors(self, before: Resources, after: Resources) -> str:
        if before.tensors is None or after.tensors is None:
            return ""
        grown = after.tensors - before.tensors
        if grown <= self.tolerance["tensors"]:
            return ""
        torch = sys.modules["torch"]
        new = [obj for key, obj in _live_tensors(torch).items() if key not in before.tensor_ids]
        names = [_describe_tensor(obj) for obj in new[:_SHOWN]] + ["..."] * (len(new) > _SHOWN)
        del new
        return _plural(grown, "tensor") + (f" ({', '.join(names)})" if names else "")

    def _cuda(self, before: Resources, after: Resources) -> str:
        grown = after.cuda_bytes - before.cuda_bytes
        if grown <= self.tolerance["cuda_bytes"]:
            return ""
        return f"{_plural(grown, 'byte')} of CUDA memory"


def no_leaks(
    func: F | None = None, *, threads: int = 0, fds: int = 0, tensors: int = 0, cuda_bytes: int = 0
) -> Any:
    """A leak check: `with no_leaks():`, `async with no_leaks():`, `@no_leaks`, or
    `@no_leaks(threads=1)` with tolerances.

    Works on plain and `async def` functions (test methods included). Fails with an
    `AssertionError` such as "leaked 1 thread (worker-3), 2 file descriptors (/tmp/x, ...)".
    """
    check = LeakCheck(threads=threads, fds=fds, tensors=tensors, cuda_bytes=cuda_bytes)
    return check if func is None else check(func)
