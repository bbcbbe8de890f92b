"""Property tests: arbitrary input, bad and valid mixed, either succeeds with the right answer or
raises a typed `ShardEngineError`, never anything else, and the engine is still loaded and
answers correctly afterwards.

Every strategy mixes valid values (built like real callers build them) into the arbitrary ones,
and every engine test asserts that both outcomes happened among its examples, so the success
branch is exercised, not only the rejections. Hypothesis runs derandomized, without a database
and with few examples, so every run (and every mutant the gate runs it against) sees the same
inputs.
"""

from __future__ import annotations

import asyncio
import unittest
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
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
    classify_oom,
)
from shardengine.shard import Shard
from shardengine.state import ShardInferenceState, causal_mask
from tests.support.engines import PROMPT, pin_cpu
from tests.support.models import tiny_model_dir

VOCAB, HIDDEN = 320, 32

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



def mixed(valid: st.SearchStrategy, *others: st.SearchStrategy) -> st.SearchStrategy:
    """About one value in three from `valid`, the rest from `others` (a plain `one_of` would
    flatten the branches and draw the valid ones rarely)."""
    rest = st.one_of(*others)
    return st.integers(0, 2).flatmap(lambda pick: valid if pick == 0 else rest)


# valid values, as callers make them
TOKEN_IDS = st.integers(0, VOCAB - 1)
VALID_DECODE_TOKENS = hnp.arrays(
    st.sampled_from([np.int64, np.int32, np.uint16]),
    st.one_of(st.tuples(st.integers(0, 4)), st.tuples(st.just(1), st.integers(0, 4))),
    elements=TOKEN_IDS,
)
VALID_TOKEN_INPUT = hnp.arrays(np.int64, st.tuples(st.just(1), st.integers(1, 4)), elements=TOKEN_IDS)
VALID_HIDDEN = st.integers(1, 3).flatmap(
    lambda length: hnp.arrays(
        st.sampled_from([np.float32, np.float16, np.float64]),
        (1, length, HIDDEN),
        elements=st.floats(-4, 4, width=16),
    )
)


def state_dict(start: int, length: int) -> dict:
    """The state dict of a chunk of `length` positions after `start`, built by the real code."""
    return ShardInferenceState(
        tokens=(np.arange(start + length, dtype=np.int64)[None, :] % VOCAB),
        input_pos=np.arange(start, start + length),
        mask=causal_mask(start, length),
        curr_pos=start + length,
    ).to_dict()


VALID_STATES = st.one_of(
    st.none(),
    st.just(ShardInferenceState()).map(ShardInferenceState.to_dict),
    st.builds(state_dict, st.integers(0, 4), st.integers(1, 3)),
)


class EnginePropertyTestCase(unittest.TestCase):
    """One loaded engine per test, shared by the test's examples, and the answer of a probe call
    computed before any example ran."""

    shard_range = (0, 1)

    def setUp(self) -> None:
        pin_cpu(self)
        # one plain loop for all examples: asyncio.Runner.run swaps the SIGINT handler per call, and
        # restoring it formats the finished task, with its numpy result, into a discarded error message
        self.loop = asyncio.new_event_loop()
        self.addCleanup(self.loop.close)
        self.model_dir = tiny_model_dir()
        self.engine = self.new_engine()
        self.shard = Shard(str(self.model_dir), self.shard_range[0], self.shard_range[1], 2)
        self.run_async(self.engine.ensure_shard(self.shard))
        self.model = self.engine.model_instance
        self.probe_answer = self.probe()

    def new_engine(self) -> TorchDynamicShardInferenceEngine:
        engine = TorchDynamicShardInferenceEngine(LocalShardDownloader(self.model_dir.parent))
        self.addCleanup(engine.shutdown)
        return engine

    def run_async(self, coro):
        return self.loop.run_until_complete(coro)

    def probe(self) -> np.ndarray:
        """One real call: the prompt on the first shard, a fixed hidden state on a later one."""
        if self.shard.is_first_layer():
            out, _ = self.run_async(self.engine.infer_tensor("probe", self.shard, PROMPT))
        else:
            hidden = np.linspace(-1, 1, 3 * HIDDEN, dtype=np.float32).reshape(1, 3, HIDDEN)
            out, _ = self.run_async(self.engine.infer_tensor("probe", self.shard, hidden, state_dict(0, 3)))
        return out

    def attempt(self, coro, allowed: tuple[type[ShardEngineError], ...]) -> Any:
        """Await `coro`; an error must be one of `allowed` (all ShardEngineError subclasses)."""
        try:
            return self.run_async(coro)
        except ShardEngineError as exc:
            self.assertIsInstance(exc, allowed)
            self.assertIsInstance(exc, ValueError)
            return exc

    def assertStillUsable(self) -> None:
        """Still loaded with the same model, nothing counted, and a real call answers as before."""
        self.assertEqual(self.engine.shard, self.shard)
        self.assertIs(self.engine.model_instance, self.model)
        self.assertIsNotNone(self.engine.tokenizer)
        self.assertEqual(self.engine.out_of_memory_count, 0)
        np.testing.assert_allclose(self.probe(), self.probe_answer, rtol=0, atol=1e-6)

    def assertBothOutcomes(
        self, strategy: st.SearchStrategy, example: Callable[[Any], bool], max_examples: int = 15
    ) -> None:
        """Run `example(value)` (True: it succeeded, False: it raised a typed error) on
        `max_examples` of the strategy's values; both outcomes must occur."""
        outcomes: set[bool] = set()

        @settings(PROPERTY_SETTINGS, max_examples=max_examples)
        @given(value=strategy)
        def check(value: Any) -> None:
            outcomes.add(example(value))
            self.assertStillUsable()

        check()
        self.assertEqual(outcomes, {True, False}, "the examples did not both succeed and fail")


class TokenizerProperties(EnginePropertyTestCase):
    def test_encode_any_object(self) -> None:
        def example(prompt: Any) -> bool:
            # only InvalidPromptError: the byte-level tokenizer encodes every str
            result = self.attempt(self.engine.encode(self.shard, prompt), (InvalidPromptError,))
            valid = isinstance(prompt, str) and prompt != ""  # the contract: a non-empty str
            if isinstance(result, ShardEngineError):
                self.assertFalse(valid, prompt)
                return False
            self.assertTrue(valid, prompt)
            self.assertEqual((result.dtype, result.ndim, result.shape[0]), (np.int64, 2, 1))
            self.assertEqual(self.run_async(self.engine.decode(self.shard, result)), prompt)
            return True

        self.assertBothOutcomes(mixed(st.text(min_size=1, max_size=30), ARBITRARY), example)

    def test_decode_any_token_array(self) -> None:
        def example(tokens: Any) -> bool:
            result = self.attempt(self.engine.decode(self.shard, tokens), (InvalidTokensError,))
            valid = (
                isinstance(tokens, np.ndarray)
                and np.issubdtype(tokens.dtype, np.integer)
                and (tokens.ndim == 1 or (tokens.ndim == 2 and tokens.shape[0] == 1))
                and (tokens.size == 0 or (tokens.min() >= 0 and tokens.max() < VOCAB))
            )
            self.assertEqual(isinstance(result, str), valid, (tokens, result))
            if valid:
                ids = tokens.reshape(-1).tolist()
                self.assertEqual(result, self.engine.tokenizer.decode(ids))
            return valid

        self.assertBothOutcomes(mixed(VALID_DECODE_TOKENS, ARBITRARY, hnp.arrays(ALL_DTYPES, SHAPES)), example)


class FirstShardInputProperties(EnginePropertyTestCase):
    def test_infer_tensor_any_input(self) -> None:
        reference = self.new_engine()

        def example(input_data: Any) -> bool:
            result = self.attempt(self.engine.infer_tensor("prop", self.shard, input_data), (InvalidInputError,))
            # the contract, stated independently: integer ids of shape (1, T), 1 <= T, all in the vocabulary
            valid = (
                isinstance(input_data, np.ndarray)
                and np.issubdtype(input_data.dtype, np.integer)
                and input_data.ndim == 2 and input_data.shape[0] == 1 and input_data.shape[1] >= 1
                and input_data.min() >= 0 and input_data.max() < VOCAB
            )
            self.assertEqual(not isinstance(result, ShardEngineError), valid, (input_data, result))
            if not valid:
                return False
            out, state = result
            expected, _ = self.run_async(reference.infer_tensor("ref", self.shard, input_data))
            np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)
            np.testing.assert_array_equal(state["tokens"], input_data)
            self.assertEqual(state["curr_pos"], input_data.shape[1])
            return True

        strategy = mixed(VALID_TOKEN_INPUT, ARBITRARY, hnp.arrays(ALL_DTYPES, SHAPES, elements=None))
        self.assertBothOutcomes(strategy, example)

    def test_infer_tensor_any_state_dict(self) -> None:
        """After a prefix [1, 2, 3] of request "prop", the next token [4] with any state: a valid
        one that continues the cache (curr_pos 3) extends the sequence, no state or the empty one
        starts a new sequence, anything else is rejected and leaves the cache as it was."""
        reference = self.new_engine()
        continued, _ = self.run_async(reference.infer_tensor("ref", self.shard, np.array([[1, 2, 3, 4]])))
        alone, _ = self.run_async(reference.infer_tensor("ref", self.shard, np.array([[4]])))
        faulty = st.fixed_dictionaries(
            {
                "tokens": st.one_of(hnp.arrays(ALL_DTYPES, SHAPES), ARBITRARY),
                "input_pos": st.one_of(hnp.arrays(hnp.integer_dtypes(), hnp.array_shapes(max_dims=2, max_side=3)), ARBITRARY),
                "mask": st.one_of(hnp.arrays(hnp.boolean_dtypes(), hnp.array_shapes(max_dims=2, max_side=4)), ARBITRARY),
                "curr_pos": st.one_of(st.integers(-2, 6), ARBITRARY),
            },
            optional={"extra": st.integers()},
        )

        def example(state: Any) -> bool:
            self.run_async(self.engine.infer_tensor("prop", self.shard, PROMPT))
            before = (self.model.cache_owner, self.model.cache_len)
            self.assertEqual(before, ("prop", 3))
            result = self.attempt(
                self.engine.infer_tensor("prop", self.shard, np.array([[4]]), state),
                (InvalidStateError, InvalidInputError),
            )
            if isinstance(result, ShardEngineError):
                self.assertEqual((self.model.cache_owner, self.model.cache_len), before)
                return False
            out, new_state = result
            new_sequence = state is None or state["curr_pos"] == 0
            self.assertEqual(new_state["curr_pos"], 1 if new_sequence else 4)
            expected = alone if new_sequence else continued
            np.testing.assert_allclose(out[0, -1], expected[0, -1], rtol=0, atol=1e-5)
            return True

        self.assertBothOutcomes(mixed(VALID_STATES, ARBITRARY, faulty), example)


class LaterShardInputProperties(EnginePropertyTestCase):
    shard_range = (1, 1)

    def test_infer_tensor_any_hidden_state(self) -> None:
        reference = self.new_engine()

        def example(input_data: Any) -> bool:
            length = input_data.shape[1] if isinstance(input_data, np.ndarray) and input_data.ndim == 3 else 1
            state = state_dict(0, max(length, 1))
            result = self.attempt(
                self.engine.infer_tensor("prop", self.shard, input_data, state), (InvalidInputError, InvalidStateError)
            )
            # the contract, stated independently: floating point (1, T, hidden), 1 <= T, finite as float32
            with np.errstate(over="ignore", invalid="ignore"):
                valid = (
                    isinstance(input_data, np.ndarray)
                    and np.issubdtype(input_data.dtype, np.floating)
                    and input_data.ndim == 3 and input_data.shape[0] == 1 and input_data.shape[1] >= 1
                    and input_data.shape[2] == HIDDEN
                    and bool(np.isfinite(input_data.astype(np.float32)).all())
                )
            self.assertEqual(not isinstance(result, ShardEngineError), valid, (input_data, result))
            if not valid:
                return False
            out, new_state = result
            self.assertEqual(out.shape, (1, length, VOCAB))
            self.assertTrue(np.isfinite(out).all())
            expected, _ = self.run_async(reference.infer_tensor("ref", self.shard, input_data.astype(np.float32), state))
            np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)
            np.testing.assert_array_equal(new_state["tokens"], state["tokens"])
            return True

        strategy = mixed(VALID_HIDDEN, ARBITRARY, hnp.arrays(ALL_DTYPES, hnp.array_shapes(min_dims=1, max_dims=3, max_side=3)))
        self.assertBothOutcomes(strategy, example)


class ValueProperties(unittest.TestCase):
    @PROPERTY_SETTINGS
    @given(
        model_id=st.one_of(st.text(max_size=4), ARBITRARY),
        start=st.one_of(st.integers(-2, 5), ARBITRARY),
        end=st.one_of(st.integers(-2, 5), ARBITRARY),
        n=st.one_of(st.integers(-1, 5), ARBITRARY),
    )
    def test_shard_spec(self, model_id, start, end, n) -> None:
        def layer(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        # the contract, stated independently: a non-empty string id, integer layers, 0 <= start <= end < n
        valid = (isinstance(model_id, str) and model_id != "" and layer(start) and layer(end) and layer(n)
                 and 0 <= start <= end < n)
        try:
            shard = Shard(model_id, start, end, n)
        except InvalidShardError as exc:
            self.assertIsInstance(exc, ValueError)
            self.assertFalse(valid, (model_id, start, end, n))
            return
        self.assertTrue(valid, (model_id, start, end, n))
        self.assertTrue(0 <= shard.start_layer <= shard.end_layer < shard.n_layers)
        self.assertEqual(shard.get_layer_count(), end - start + 1)
        self.assertEqual(shard, Shard(model_id, start, end, n))

    @PROPERTY_SETTINGS
    @given(start=st.integers(0, 40), length=st.integers(0, 8))
    def test_state_round_trip(self, start, length) -> None:
        data = ShardInferenceState().to_dict() if length == 0 else state_dict(start, length)
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
