"""Building engines over tiny models, and assertions about the state an engine is left in."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import unittest
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from shardengine.downloader import LocalShardDownloader
from shardengine.engine import TorchDynamicShardInferenceEngine
from shardengine.model import ShardedGeneralModel
from shardengine.shard import Shard
from shardengine.state import causal_mask
from tests.support.models import copy_tiny_model, tiny_model_dir

# the prompt most tests run: three token ids of the tiny model's vocabulary
PROMPT = np.array([[1, 2, 3]], dtype=np.int64)


def pin_cpu(test: unittest.TestCase) -> None:
    """Engines made during `test` run on the CPU, whatever the machine has (`SHARDENGINE_DEVICE`),
    so its real CPU out-of-memory errors stay CPU ones on a GPU machine. A test that means another
    device sets `SHARDENGINE_DEVICE` itself, inside the test."""
    patcher = mock.patch.dict(os.environ, {"SHARDENGINE_DEVICE": "cpu"})
    patcher.start()
    test.addCleanup(patcher.stop)


def full_shard(model_dir: Path, n_layers: int = 2) -> Shard:
    """All layers of the model at `model_dir` (an absolute path is its own model id)."""
    return Shard(str(model_dir), 0, n_layers - 1, n_layers)


class EngineTestCase(unittest.IsolatedAsyncioTestCase):
    """Base class: engines over tiny models, private temp folders, and state assertions."""

    maxDiff = None

    def setUp(self) -> None:
        pin_cpu(self)

    async def asyncSetUp(self) -> None:
        # unittest runs the loop in debug mode, which reports every step over 0.1 s on stderr
        # ("Executing <Task ...> took 0.155 seconds"): a real model step may take that long
        asyncio.get_running_loop().slow_callback_duration = 60.0

    def make_engine(self) -> TorchDynamicShardInferenceEngine:
        engine = TorchDynamicShardInferenceEngine(LocalShardDownloader(self.temp_dir()))
        self.addCleanup(engine.shutdown)
        return engine

    def hold(self, only: str | None = None) -> Hold:
        """A `Hold` (below) that lets the worker go when the test ends, whatever happened."""
        hold = Hold(only)
        self.addCleanup(hold.release.set)
        return hold

    def temp_dir(self) -> Path:
        path = Path(tempfile.mkdtemp(prefix="shardengine-test-"))
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def model_copy(self, **params: Any) -> Path:
        """A writable copy of a tiny model, for tests that damage its files."""
        return copy_tiny_model(self.temp_dir() / "model", **params)

    async def loaded_engine(self, **params: Any) -> tuple[TorchDynamicShardInferenceEngine, Shard]:
        """An engine with the whole tiny model loaded."""
        engine = self.make_engine()
        shard = full_shard(tiny_model_dir(**params), params.get("layers", 2))
        await engine.ensure_shard(shard)
        self.assertEqual(engine.shard, shard)
        return engine, shard

    # ------------------------------------------------------------------------- state assertions

    def assertUnloaded(self, engine: TorchDynamicShardInferenceEngine) -> None:
        self.assertIsNone(engine.shard)
        self.assertIsNone(engine.model_instance)
        self.assertIsNone(engine.inference_state)
        self.assertIsNone(engine.tokenizer)

    def snapshot(self, engine: TorchDynamicShardInferenceEngine) -> dict[str, Any]:
        """What a failed call must not change: compare with `assertUnchanged`."""
        model = engine.model_instance
        return {
            "shard": engine.shard,
            "model_instance": model,
            "inference_state": engine.inference_state,
            "tokenizer": engine.tokenizer,
            "out_of_memory_count": engine.out_of_memory_count,
            "cache_owner": None if model is None else model.cache_owner,
            "cache_len": None if model is None else model.cache_len,
            "kv_cache": None if model is None else model.kv_cache,
        }

    def assertUnchanged(self, before: dict[str, Any], engine: TorchDynamicShardInferenceEngine) -> None:
        after = self.snapshot(engine)
        for key, value in before.items():
            with self.subTest(attribute=key):
                if key in ("shard", "cache_len", "out_of_memory_count"):
                    self.assertEqual(after[key], value)
                else:
                    self.assertIs(after[key], value)

    def assertLoaded(self, engine: TorchDynamicShardInferenceEngine, shard: Shard) -> None:
        self.assertEqual(engine.shard, shard)
        self.assertIsNotNone(engine.model_instance)
        self.assertIsNotNone(engine.tokenizer)

    def assertStateDict(self, state: dict, tokens: np.ndarray, start: int, length: int) -> None:
        self.assertEqual(set(state), {"tokens", "input_pos", "mask", "curr_pos"})
        np.testing.assert_array_equal(state["tokens"], tokens)
        np.testing.assert_array_equal(state["input_pos"], np.arange(start, start + length))
        np.testing.assert_array_equal(state["mask"], causal_mask(start, length))
        self.assertEqual(state["curr_pos"], start + length)
        self.assertIs(type(state["curr_pos"]), int)


# ------------------------------------------------------------------ holding the worker thread


class Hold:
    """Holds the engine's worker thread inside a wrapped function until `release` is set, so a test
    can cancel or queue calls while a step (or a load) is known to be running.

    Make it inside the test's event loop. `started` (an asyncio.Event) is set from the thread when a
    held call begins, `finished` (a threading.Event) when it ends; `calls` lists the request ids
    that reached `generate()`'s replacement. Set `release` in a cleanup too, so a failing test never
    leaves the thread waiting.
    """

    def __init__(self, only: str | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.only = only
        self.started = asyncio.Event()
        self.release = threading.Event()
        self.finished = threading.Event()
        self.calls: list[str | None] = []

    def wrap(self, real: Callable[..., Any]) -> Callable[..., Any]:
        """`real`, held at its start until `release` is set."""

        def held(*args: Any, **kwargs: Any) -> Any:
            self.loop.call_soon_threadsafe(self.started.set)
            if not self.release.wait(30):
                raise AssertionError("the test never released the worker")
            try:
                return real(*args, **kwargs)
            finally:
                self.finished.set()

        return held

    def generate(self) -> Callable[..., Any]:
        """A replacement for `ShardedGeneralModel.generate` (patch it on the class) that holds the
        calls of request `only`, or every call, and runs the real step afterwards."""
        real = ShardedGeneralModel.generate
        held = self.wrap(real)

        def generate(model: ShardedGeneralModel, x: Any, positions: Any, request_id: str | None = None) -> Any:
            self.calls.append(request_id)
            if self.only is None or request_id == self.only:
                return held(model, x, positions, request_id)
            return real(model, x, positions, request_id)

        return generate
