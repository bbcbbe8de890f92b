"""Out-of-memory helpers shared by the curated suite and the engine's tests: the model whose KV
cache cannot be allocated, the messages of the OOMs this machine cannot produce, and spies on the
engine's cache emptying."""

from __future__ import annotations

import gc
import sys
import unittest
import weakref
from collections.abc import Callable
from typing import Any
from unittest import mock

import torch

# A `max_position_embeddings` no machine can back: one KV-cache tensor of the tiny model is
# 1 x 2 kv heads x 10**14 positions x head_dim 8 x 4 bytes = 6.4 PB, far beyond the 128 TiB of a
# 64-bit Linux process's address space, so the allocation fails even with
# `vm.overcommit_memory=1` (which would let a smaller impossible one succeed, then the OOM killer
# end the test run).
HUGE_POSITIONS = 10**14

CUDA_MESSAGE = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.78 GiB total capacity)"
MPS_MESSAGE = "MPS backend out of memory (MPS allocated: 17.00 GB, other allocations: 1.00 GB, max allowed: 18.13 GB)"


class ModuleWith:
    """A module as one of the engine's modules sees it (`shardengine.engine.torch`,
    `shardengine.config.json`), with some names replaced: an error injected at that module's own
    calls only, not at those of every other user of the real module."""

    def __init__(self, module: Any, **replaced: Any) -> None:
        for name in replaced:
            if not hasattr(module, name):  # a misspelt name would replace nothing the engine calls
                raise AttributeError(f"{module.__name__} has no {name!r} to replace")
        self._module = module
        self._replaced = replaced

    def __getattr__(self, name: str) -> Any:
        return self._replaced[name] if name in self._replaced else getattr(self._module, name)


def out_of_memory_errors() -> list[BaseException]:
    """One out-of-memory error of each kind a load can meet: Python's, torch's CPU allocator's
    (its real message), CUDA's."""
    return [MemoryError(), RuntimeError(real_cpu_oom_message()), torch.OutOfMemoryError(CUDA_MESSAGE)]


def real_cpu_oom_message() -> str:
    """The message torch gives for the first KV-cache tensor of the tiny model with `HUGE_POSITIONS`."""
    try:
        torch.zeros((1, 2, HUGE_POSITIONS, 8), dtype=torch.float32)
    except RuntimeError as exc:
        return str(exc)
    raise AssertionError("allocating 6.4 PB succeeded")


class CacheEmptyingSpies:
    """Replaces `torch.cuda.empty_cache` and `torch.mps.empty_cache` (as seen from the engine) with
    mocks, and spies on `gc.collect` (it still runs), for the duration of a test.

    Each call records `(the exception being handled in the calling thread, or None, the watched
    engine's model_instance)` in `seen`, so a test can check that the cache is emptied after the
    `except` block is left and after the model was released.
    """

    def __init__(self, test: unittest.TestCase) -> None:
        self.engine: Any = None
        self.model_ref: Callable[[], Any] = lambda: None
        self.seen: list[tuple[type[BaseException] | None, Any]] = []
        self.model_alive: list[bool] = []
        """Per call: whether the watched model object still existed (for `gc.collect`, after it
        ran). A released attribute is not enough: a local that still holds the model would
        leave nothing for the allocator to free."""
        real_collect = gc.collect

        def record(*args: Any, **kwargs: Any) -> None:
            self.seen.append((sys.exc_info()[0], getattr(self.engine, "model_instance", None)))
            self.model_alive.append(self.model_ref() is not None)

        def collect(*args: Any, **kwargs: Any) -> int:
            self.seen.append((sys.exc_info()[0], getattr(self.engine, "model_instance", None)))
            collected = real_collect(*args, **kwargs)
            self.model_alive.append(self.model_ref() is not None)
            return collected

        patchers = {
            "cuda": mock.patch("shardengine.engine.torch.cuda.empty_cache", side_effect=record),
            "mps": mock.patch("shardengine.engine.torch.mps.empty_cache", side_effect=record),
            "gc": mock.patch("shardengine.engine.gc.collect", side_effect=collect),
        }
        for name, patcher in patchers.items():
            setattr(self, name, patcher.start())
            test.addCleanup(patcher.stop)
        self.test = test

    def watch(self, engine: Any) -> None:
        """Record `engine.model_instance`, and whether its current model still exists, with each
        call from now on. The test must not hold the model itself."""
        self.engine = engine
        self.model_ref = weakref.ref(engine.model_instance)

    def assertEmptied(self, cuda: int, mps: int, cpu: int) -> None:
        """Each backend's cache was emptied that many times, with no arguments, and never while an
        exception was being handled."""
        self.test.assertEqual(self.cuda.call_count, cuda)
        self.test.assertEqual(self.mps.call_count, mps)
        self.test.assertEqual(self.gc.call_count, cpu)
        for spy in (self.cuda, self.mps, self.gc):
            for call in spy.call_args_list:
                self.test.assertEqual(call, mock.call())
        self.test.assertEqual([handling for handling, _ in self.seen], [None] * len(self.seen))
