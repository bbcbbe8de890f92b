"""Property tests: arbitrary bad input either succeeds or raises a typed `ShardEngineError`, never
anything else, and the engine is still loaded and usable afterwards.

Hypothesis runs derandomized, without a database and with few examples, so every run (and every
mutant the gate runs it against) sees the same inputs. The engine runs in one event loop per test
(`asyncio.Runner`), driven from hypothesis' `execute_example` hook.
"""

from __future__ import annotations

import asyncio
import inspect
import unittest

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shardengine.downloader import LocalShardDownloader
from shardengine.engine import TorchDynamicShardInferenceEngine
from shardengine.errors import (
    CPU_OOM_MARKER,
    MPS_OOM_MARKER,
    InvalidInputError,
    InvalidPromptError,
    InvalidShardError,
    InvalidStateError,
    InvalidTokensError,
    ShardEngineError,
    TokenizerError,
    classify_oom,
)
from shardengine.shard import Shard
from shardengine.state import ShardInferenceState, causal_mask
from tests.support.models import tiny_model_dir

import torch

PROPERTY_SETTINGS = settings(
    max_examples=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

ALL_DTYPES = st.one_of(
    hnp.integer_dtypes(),
    hnp.unsigned_integer_dtypes(),
    hnp.floating_dtypes(),
    hnp.boolean_dtypes(),
    hnp.complex_number_dtypes(),
)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
ARBITRARY = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5), st.binary(max_size=5),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


class EnginePropertyTestCase(unittest.TestCase):
    """One loaded engine per test, shared by the test's examples."""

    shard_range = (0, 1)

    def setUp(self) -> None:
        self.runner = asyncio.Runner()
        self.addCleanup(self.runner.close)
        self.engine = TorchDynamicShardInferenceEngine(LocalShardDownloader("/nonexistent-root"))
        self.addCleanup(self.engine.shutdown)
        model_dir = tiny_model_dir()
        self.shard = Shard(str(model_dir), self.shard_range[0], self.shard_range[1], 2)
        self.run_async(self.engine.ensure_shard(self.shard))
        self.model = self.engine.model_instance

    def run_async(self, coro):
        return self.runner.run(coro)

    def execute_example(self, f):
        result = f()
        if inspect.isawaitable(result):
            result = self.run_async(result)
        return result

    async def attempt(self, coro, allowed: tuple[type[ShardEngineError], ...]):
        """Await `coro`; an error must be one of `allowed` (all ShardEngineError subclasses)."""
        try:
            return await coro
        except ShardEngineError as exc:
            self.assertIsInstance(exc, allowed)
            self.assertIsInstance(exc, ValueError)
            return exc

    def assertStillUsable(self) -> None:
        self.assertEqual(self.engine.shard, self.shard)
        self.assertIs(self.engine.model_instance, self.model)
        self.assertIsNotNone(self.engine.tokenizer)
        self.assertEqual(self.engine.out_of_memory_count, 0)


class TokenizerProperties(EnginePropertyTestCase):
    @PROPERTY_SETTINGS
    @given(prompt=st.one_of(ARBITRARY, st.text(max_size=30)))
    async def test_encode_any_object(self, prompt) -> None:
        result = await self.attempt(self.engine.encode(self.shard, prompt), (InvalidPromptError, TokenizerError))
        if isinstance(result, np.ndarray):
            self.assertEqual(result.dtype, np.int64)
            self.assertEqual(result.ndim, 2)
            self.assertEqual(result.shape[0], 1)
            self.assertEqual(await self.engine.decode(self.shard, result), prompt)
        else:
            self.assertFalse(isinstance(prompt, str) and prompt, prompt)
        self.assertStillUsable()

    @PROPERTY_SETTINGS
    @given(tokens=st.one_of(ARBITRARY, hnp.arrays(ALL_DTYPES, SHAPES)))
    async def test_decode_any_token_array(self, tokens) -> None:
        result = await self.attempt(self.engine.decode(self.shard, tokens), (InvalidTokensError,))
        valid = (
            isinstance(tokens, np.ndarray)
            and np.issubdtype(tokens.dtype, np.integer)
            and (tokens.ndim == 1 or (tokens.ndim == 2 and tokens.shape[0] == 1))
            and (tokens.size == 0 or (tokens.min() >= 0 and tokens.max() < 320))
        )
        self.assertEqual(isinstance(result, str), valid, (tokens, result))
        self.assertStillUsable()


class FirstShardInputProperties(EnginePropertyTestCase):
    @PROPERTY_SETTINGS
    @given(input_data=st.one_of(ARBITRARY, hnp.arrays(ALL_DTYPES, SHAPES, elements=None)))
    async def test_infer_tensor_any_input(self, input_data) -> None:
        result = await self.attempt(
            self.engine.infer_tensor("prop", self.shard, input_data), (InvalidInputError,)
        )
        if isinstance(result, tuple):
            out, state = result
            self.assertEqual(out.shape, (1, input_data.shape[1], 320))
            self.assertEqual(state["curr_pos"], input_data.shape[1])
        self.assertStillUsable()

    @PROPERTY_SETTINGS
    @given(
        state=st.one_of(
            ARBITRARY,
            st.fixed_dictionaries(
                {
                    "tokens": st.one_of(hnp.arrays(ALL_DTYPES, SHAPES), ARBITRARY),
                    "input_pos": st.one_of(hnp.arrays(hnp.integer_dtypes(), hnp.array_shapes(max_dims=2, max_side=3)), ARBITRARY),
                    "mask": st.one_of(hnp.arrays(hnp.boolean_dtypes(), hnp.array_shapes(max_dims=2, max_side=4)), ARBITRARY),
                    "curr_pos": st.one_of(st.integers(-2, 6), ARBITRARY),
                },
                optional={"extra": st.integers()},
            ),
        )
    )
    async def test_infer_tensor_any_state_dict(self, state) -> None:
        await self.engine.infer_tensor("prop", self.shard, np.array([[1, 2, 3]]))
        before = (self.model.cache_owner, self.model.cache_len)
        result = await self.attempt(
            self.engine.infer_tensor("prop", self.shard, np.array([[4]]), state), (InvalidStateError, InvalidInputError)
        )
        if isinstance(result, tuple):
            # a valid state continues the sequence; no state starts a new one
            self.assertEqual(result[1]["curr_pos"], 1 if state is None else 4)
        else:
            self.assertEqual((self.model.cache_owner, self.model.cache_len), before)
        self.assertStillUsable()


class LaterShardInputProperties(EnginePropertyTestCase):
    shard_range = (1, 1)

    @PROPERTY_SETTINGS
    @given(input_data=st.one_of(ARBITRARY, hnp.arrays(ALL_DTYPES, hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))))
    async def test_infer_tensor_any_hidden_state(self, input_data) -> None:
        length = input_data.shape[1] if isinstance(input_data, np.ndarray) and input_data.ndim == 3 else 1
        state = {
            "tokens": np.ones((1, max(length, 1)), dtype=np.int64),
            "input_pos": np.arange(max(length, 1)),
            "mask": causal_mask(0, max(length, 1)),
            "curr_pos": max(length, 1),
        }
        result = await self.attempt(
            self.engine.infer_tensor("prop", self.shard, input_data, state), (InvalidInputError, InvalidStateError)
        )
        if isinstance(result, tuple):
            self.assertEqual(result[0].shape, (1, length, 320))
            self.assertTrue(np.isfinite(result[0]).all())
        self.assertStillUsable()


class ValueProperties(unittest.TestCase):
    @PROPERTY_SETTINGS
    @given(
        model_id=st.one_of(st.text(max_size=4), ARBITRARY),
        start=st.one_of(st.integers(-2, 5), ARBITRARY),
        end=st.one_of(st.integers(-2, 5), ARBITRARY),
        n=st.one_of(st.integers(-1, 5), ARBITRARY),
    )
    def test_shard_spec(self, model_id, start, end, n) -> None:
        try:
            shard = Shard(model_id, start, end, n)
        except InvalidShardError as exc:
            self.assertIsInstance(exc, ValueError)
            return
        self.assertTrue(0 <= shard.start_layer <= shard.end_layer < shard.n_layers)
        self.assertEqual(shard.get_layer_count(), end - start + 1)
        self.assertEqual(shard, Shard(model_id, start, end, n))

    @PROPERTY_SETTINGS
    @given(start=st.integers(0, 40), length=st.integers(1, 8))
    def test_state_round_trip(self, start, length) -> None:
        data = {
            "tokens": np.arange(start + length, dtype=np.int64)[None, :],
            "input_pos": np.arange(start, start + length),
            "mask": causal_mask(start, length),
            "curr_pos": start + length,
        }
        again = ShardInferenceState.from_dict(data).to_dict()
        self.assertEqual(again["curr_pos"], data["curr_pos"])
        for key in ("tokens", "input_pos", "mask"):
            np.testing.assert_array_equal(again[key], data[key])

    @PROPERTY_SETTINGS
    @given(message=st.text(max_size=40), kind=st.sampled_from(["runtime", "oom", "memory", "value"]))
    def test_classify_oom(self, message, kind) -> None:
        exc = {
            "runtime": RuntimeError,
            "oom": torch.OutOfMemoryError,
            "memory": MemoryError,
            "value": ValueError,
        }[kind](message)
        if kind == "value":
            expected = None
        elif kind != "memory" and MPS_OOM_MARKER in message:
            expected = "MPS"
        elif kind == "oom":
            expected = "CUDA"
        elif kind == "memory" or CPU_OOM_MARKER in message:
            expected = "CPU"
        else:
            expected = None
        self.assertEqual(classify_oom(exc), expected)
        for marker, backend in ((CPU_OOM_MARKER, "CPU"), (MPS_OOM_MARKER, "MPS")):
            self.assertEqual(classify_oom(RuntimeError(message + marker + message)), backend)


if __name__ == "__main__":
    unittest.main()
