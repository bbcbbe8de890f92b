"""Bad input to every entry point: the exact typed error and message, raised before any work is done,
and the engine left exactly as it was."""

from __future__ import annotations

import math
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import numpy as np

from shardengine.config import ModelConfig
from shardengine.errors import (
    InvalidConfigError,
    InvalidInputError,
    InvalidPromptError,
    InvalidShardError,
    InvalidStateError,
    InvalidTokensError,
    ShardEngineError,
)
from shardengine.sampling import sample
from shardengine.shard import Shard
from shardengine.state import ShardInferenceState, causal_mask
from shardengine.tiny import write_tiny_model
from tests.support.engines import PROMPT, EngineTestCase, full_shard
from tests.support.models import tiny_model_dir


def valid_state(start: int = 0, length: int = 3) -> dict:
    return {
        "tokens": np.arange(1, start + length + 1, dtype=np.int64)[None, :],
        "input_pos": np.arange(start, start + length),
        "mask": causal_mask(start, length),
        "curr_pos": start + length,
    }


class EncodeTests(EngineTestCase):
    async def test_seed_encode_bad_prompt_is_rejected_before_loading(self) -> None:
        """Seed scenario "encode with a bad prompt": a prompt that is not a non-empty str."""
        cases = [
            (5, "prompt must be a non-empty str, got int"),
            ("", "prompt must be a non-empty str, got an empty str"),
            (None, "prompt must be a non-empty str, got NoneType"),
            (b"bytes", "prompt must be a non-empty str, got bytes"),
            (["a"], "prompt must be a non-empty str, got list"),
        ]
        engine = self.make_engine()
        shard = full_shard(tiny_model_dir())
        for prompt, message in cases:
            with self.subTest(prompt=prompt):
                with self.assertRaises(InvalidPromptError) as raised:
                    await engine.encode(shard, prompt)
                self.assertEqual(str(raised.exception), message)
                self.assertIsInstance(raised.exception, ValueError)
                self.assertUnloaded(engine)

    async def test_bad_prompt_leaves_a_loaded_engine_unchanged(self) -> None:
        engine, shard = await self.loaded_engine()
        before = self.snapshot(engine)
        with self.assertRaises(InvalidPromptError) as raised:
            await engine.encode(shard, "")
        self.assertEqual(str(raised.exception), "prompt must be a non-empty str, got an empty str")
        self.assertUnchanged(before, engine)

    async def test_shard_that_is_not_a_shard(self) -> None:
        engine, shard = await self.loaded_engine()
        before = self.snapshot(engine)
        for bad, name in (("model", "str"), (None, "NoneType"), ({"model_id": "m"}, "dict")):
            with self.subTest(shard=bad):
                with self.assertRaises(InvalidShardError) as raised:
                    await engine.encode(bad, "hello")
                self.assertEqual(str(raised.exception), f"shard must be a Shard, got {name}")
                self.assertUnchanged(before, engine)


class DecodeTests(EngineTestCase):
    async def test_seed_decode_bad_tokens(self) -> None:
        """Seed scenario "decode with bad tokens": each structural fault, rejected before loading."""
        cases = [
            ([1, 2], "tokens must be a numpy array, got list"),
            (np.array([1.0, 2.0]), "tokens must have an integer dtype, got float64"),
            (np.array([True]), "tokens must have an integer dtype, got bool"),
            (np.array(["a"]), "tokens must have an integer dtype, got <U1"),
            (np.array(5), "tokens must have shape (N,) or (1, N), got ()"),
            (np.zeros((1, 1, 1), dtype=np.int64), "tokens must have shape (N,) or (1, N), got (1, 1, 1)"),
            (np.zeros((2, 3), dtype=np.int64), "tokens must have shape (N,) or (1, N), got (2, 3)"),
            (np.array([[3, -1, -7]]), "token ids must be >= 0, got -7"),
        ]
        engine = self.make_engine()
        shard = full_shard(tiny_model_dir())
        for tokens, message in cases:
            with self.subTest(message=message):
                with self.assertRaises(InvalidTokensError) as raised:
                    await engine.decode(shard, tokens)
                self.assertEqual(str(raised.exception), message)
                self.assertUnloaded(engine)

    async def test_token_outside_the_vocabulary(self) -> None:
        engine, shard = await self.loaded_engine()
        before = self.snapshot(engine)
        for tokens, bad in ((np.array([320]), 320), (np.array([[0, 2**40, 5]], dtype=np.uint64), 2**40)):
            with self.subTest(bad=bad):
                with mock.patch.object(engine.tokenizer, "decode", side_effect=AssertionError("called")) as dec:
                    with self.assertRaises(InvalidTokensError) as raised:
                        await engine.decode(shard, tokens)
                self.assertEqual(str(raised.exception), f"token id {bad} is out of range for a vocabulary of 320")
                dec.assert_not_called()
                self.assertUnchanged(before, engine)

    async def test_valid_edge_cases_decode(self) -> None:
        engine, shard = await self.loaded_engine()
        self.assertEqual(await engine.decode(shard, np.zeros((0,), dtype=np.int64)), "")
        ids = await engine.encode(shard, "The river")
        self.assertEqual(await engine.decode(shard, ids[0].astype(np.uint16)), "The river")
        self.assertLoaded(engine, shard)


class RejectionTestCase(EngineTestCase):
    """`assertRejected`: the call raises exactly `error` with `message`, the model never runs,
    and the engine (model, state, tokenizer, shard, count, KV cache) is left as it was."""

    async def assertRejected(self, engine, shard, error, message, request_id, input_data, state=None) -> None:
        before = self.snapshot(engine)
        with mock.patch.object(engine.model_instance, "generate", wraps=engine.model_instance.generate) as gen:
            with self.assertRaises(error) as raised:
                await engine.infer_tensor(request_id, shard, input_data, state)
        self.assertEqual(str(raised.exception), message)
        self.assertIs(type(raised.exception), error)
        gen.assert_not_called()
        self.assertUnchanged(before, engine)


class InferTensorFirstShardTests(RejectionTestCase):
    async def test_bad_input_data(self) -> None:
        engine, shard = await self.loaded_engine()
        cases = [
            ([[1, 2]], "input_data must be a numpy array, got list"),
            (None, "input_data must be a numpy array, got NoneType"),
            (np.array([[1.0, 2.0]], dtype=np.float32), "the first shard takes integer token ids, got dtype float32"),
            (np.array([[True]]), "the first shard takes integer token ids, got dtype bool"),
            (np.array([1, 2]), "the first shard takes token ids of shape (1, T) with T >= 1, got shape (2,)"),
            (np.zeros((2, 3), dtype=np.int64), "the first shard takes token ids of shape (1, T) with T >= 1, got shape (2, 3)"),
            (np.zeros((1, 0), dtype=np.int64), "the first shard takes token ids of shape (1, T) with T >= 1, got shape (1, 0)"),
            (np.zeros((1, 2, 1), dtype=np.int64), "the first shard takes token ids of shape (1, T) with T >= 1, got shape (1, 2, 1)"),
            (np.array([[1, 320]]), "token ids must be in [0, 320), got ids from 1 to 320"),
            (np.array([[-1, 5]]), "token ids must be in [0, 320), got ids from -1 to 5"),
            (np.zeros((1, 129), dtype=np.int64), "positions 0 to 128 exceed max_position_embeddings (128)"),
        ]
        for input_data, message in cases:
            with self.subTest(message=message):
                error = InvalidInputError
                await self.assertRejected(engine, shard, error, message, "r", input_data)

    async def test_boundaries_that_are_accepted_or_rejected(self) -> None:
        engine, shard = await self.loaded_engine()
        out, state = await engine.infer_tensor("r1", shard, np.ones((1, 128), dtype=np.int64))
        self.assertEqual(out.shape, (1, 128, 320))
        self.assertEqual(state["curr_pos"], 128)
        _, state = await engine.infer_tensor("r1", shard, np.array([[7]]))
        await self.assertRejected(
            engine, shard, InvalidStateError,
            "request 'r2' at position 1 does not continue the KV cache, which holds request 'r1' up to position 1",
            "r2", np.array([[8]]), state,
        )
        out, state = await engine.infer_tensor("r1", shard, np.array([[8, 9]]), state)
        self.assertEqual(out.shape, (1, 2, 320))
        self.assertStateDict(state, np.array([[7, 8, 9]]), 1, 2)

    async def test_bad_request_id(self) -> None:
        engine, shard = await self.loaded_engine()
        for request_id, got in ((None, "NoneType"), ("", "an empty str"), (7, "int")):
            with self.subTest(request_id=request_id):
                await self.assertRejected(
                    engine, shard, InvalidInputError, f"request_id must be a non-empty str, got {got}", request_id, PROMPT
                )

    async def test_state_that_does_not_continue_the_kv_cache(self) -> None:
        engine, shard = await self.loaded_engine()
        # a fresh model has no cached sequence
        await self.assertRejected(
            engine, shard, InvalidStateError,
            "request 'r1' at position 3 does not continue the KV cache, which holds request None up to position 0",
            "r1", np.array([[4]]), valid_state(0, 3),
        )
        _, state = await engine.infer_tensor("r1", shard, PROMPT)
        # another request
        await self.assertRejected(
            engine, shard, InvalidStateError,
            "request 'r2' at position 3 does not continue the KV cache, which holds request 'r1' up to position 3",
            "r2", np.array([[4]]), state,
        )
        _, newer = await engine.infer_tensor("r1", shard, np.array([[4]]), state)
        # a stale state of the same request
        await self.assertRejected(
            engine, shard, InvalidStateError,
            "request 'r1' at position 3 does not continue the KV cache, which holds request 'r1' up to position 4",
            "r1", np.array([[5]]), state,
        )
        # past the end of the positions
        await self.assertRejected(
            engine, shard, InvalidInputError, "positions 4 to 128 exceed max_position_embeddings (128)",
            "r1", np.ones((1, 125), dtype=np.int64), newer,
        )
        self.assertEqual(newer["curr_pos"], 4)


class InferTensorLaterShardTests(RejectionTestCase):
    async def later_shard_engine(self):
        engine = self.make_engine()
        model_dir = tiny_model_dir()
        shard = Shard(str(model_dir), 1, 1, 2)
        await engine.ensure_shard(shard)
        return engine, shard

    async def test_bad_hidden_state(self) -> None:
        engine, shard = await self.later_shard_engine()
        state = valid_state(0, 3)
        hidden = np.zeros((1, 3, 32), dtype=np.float32)
        nan = hidden.copy()
        nan[0, 1, 7] = np.nan
        inf = hidden.copy()
        inf[0, 2, 0] = -np.inf
        cases = [
            (InvalidInputError, [[0.0]], state, "input_data must be a numpy array, got list"),
            (InvalidInputError, np.zeros((1, 3, 32), dtype=np.int64), state,
             "a later shard takes a floating point hidden state, got dtype int64"),
            (InvalidInputError, np.zeros((1, 3, 31), dtype=np.float32), state,
             "a later shard takes a hidden state of shape (1, T, 32) with T >= 1, got shape (1, 3, 31)"),
            (InvalidInputError, np.zeros((3, 32), dtype=np.float32), state,
             "a later shard takes a hidden state of shape (1, T, hidden_size) with T >= 1, got shape (3, 32)"),
            (InvalidInputError, np.zeros((2, 3, 32), dtype=np.float32), state,
             "a later shard takes a hidden state of shape (1, T, hidden_size) with T >= 1, got shape (2, 3, 32)"),
            (InvalidInputError, np.zeros((1, 0, 32), dtype=np.float32), state,
             "a later shard takes a hidden state of shape (1, T, hidden_size) with T >= 1, got shape (1, 0, 32)"),
            (InvalidInputError, nan, state, "the hidden state holds NaN or Inf values (as float32)"),
            (InvalidInputError, inf, state, "the hidden state holds NaN or Inf values (as float32)"),
            (InvalidInputError, np.full((1, 3, 32), 1e300), state, "the hidden state holds NaN or Inf values (as float32)"),
            (InvalidStateError, hidden, None, "a shard that does not start at layer 0 needs the inference state"),
            (InvalidStateError, np.zeros((1, 2, 32), dtype=np.float32), state,
             "the hidden state has 2 positions, but the inference state's input_pos has 3"),
            (InvalidStateError, hidden, valid_state(4, 3),
             "request 'r' at position 4 does not continue the KV cache, which holds request None up to position 0"),
            (InvalidStateError, hidden, ShardInferenceState().to_dict(),
             "the hidden state has 3 positions, but the inference state's input_pos has 0"),
        ]
        for error, input_data, state_dict, message in cases:
            with self.subTest(message=message):
                await self.assertRejected(engine, shard, error, message, "r", input_data, state_dict)

    async def test_later_shard_runs_a_valid_hidden_state(self) -> None:
        engine, shard = await self.later_shard_engine()
        out, state = await engine.infer_tensor("r", shard, np.zeros((1, 3, 32), dtype=np.float16), valid_state(0, 3))
        self.assertEqual(out.shape, (1, 3, 320))
        self.assertStateDict(state, valid_state(0, 3)["tokens"], 0, 3)


class RejectedBeforeLoadingTests(EngineTestCase):
    """What the arguments alone tell is checked before the shard is loaded: the downloader is never
    asked, and the engine stays unloaded."""

    async def test_bad_arguments_leave_the_engine_unloaded(self) -> None:
        model_dir = tiny_model_dir()
        first, later = full_shard(model_dir), Shard(str(model_dir), 1, 1, 2)
        hidden = np.zeros((1, 3, 32), dtype=np.float32)
        cases = [
            (InvalidShardError, "shard must be a Shard, got str", ("r", "model", PROMPT)),
            (InvalidInputError, "request_id must be a non-empty str, got an empty str", ("", first, PROMPT)),
            (InvalidInputError, "input_data must be a numpy array, got list", ("r", first, [[1, 2]])),
            (InvalidInputError, "the first shard takes integer token ids, got dtype float64",
             ("r", first, np.array([[1.0]]))),
            (InvalidInputError, "the first shard takes token ids of shape (1, T) with T >= 1, got shape (3,)",
             ("r", first, np.array([1, 2, 3]))),
            (InvalidInputError, "a later shard takes a floating point hidden state, got dtype int64",
             ("r", later, PROMPT, valid_state(0, 3))),
            (InvalidInputError, "a later shard takes a hidden state of shape (1, T, hidden_size) with T >= 1, "
             "got shape (1, 3)", ("r", later, np.zeros((1, 3), dtype=np.float32), valid_state(0, 3))),
            (InvalidStateError, "inference state must be a dict, got list", ("r", first, PROMPT, [1])),
            (InvalidStateError, "a shard that does not start at layer 0 needs the inference state",
             ("r", later, hidden)),
            (InvalidStateError, "the hidden state has 3 positions, but the inference state's input_pos has 2",
             ("r", later, hidden, valid_state(0, 2))),
        ]
        engine = self.make_engine()
        for error, message, args in cases:
            with self.subTest(message=message):
                with mock.patch.object(engine.shard_downloader, "ensure_shard") as download:
                    with self.assertRaises(error) as raised:
                        await engine.infer_tensor(*args)
                self.assertEqual(str(raised.exception), message)
                self.assertIs(type(raised.exception), error)
                download.assert_not_called()
                self.assertUnloaded(engine)


class StateDictTests(unittest.TestCase):
    def test_each_fault_names_the_field(self) -> None:
        def with_(**changes):
            state = valid_state(0, 3)
            state.update(changes)
            return state

        extra = valid_state()
        extra["extra"] = 1
        missing = valid_state()
        del missing["mask"]
        cases = [
            ([1], "inference state must be a dict, got list"),
            (None, "inference state must be a dict, got NoneType"),
            (missing, "inference state must have the keys curr_pos, input_pos, mask, tokens; "
                      "got 'curr_pos', 'input_pos', 'tokens'"),
            (extra, "inference state must have the keys curr_pos, input_pos, mask, tokens; "
                    "got 'curr_pos', 'extra', 'input_pos', 'mask', 'tokens'"),
            ({1: 1, "a": 2}, "inference state must have the keys curr_pos, input_pos, mask, tokens; got 'a', 1"),
            (with_(tokens=[[1, 2, 3]]), "inference state 'tokens' must be a numpy array, got list"),
            (with_(input_pos=(0, 1, 2)), "inference state 'input_pos' must be a numpy array, got tuple"),
            (with_(mask=None), "inference state 'mask' must be a numpy array, got NoneType"),
            (with_(curr_pos=3.0), "inference state 'curr_pos' must be an int, got float"),
            (with_(curr_pos=True), "inference state 'curr_pos' must be an int, got bool"),
            (with_(tokens=np.ones((1, 3), dtype=np.float32)),
             "inference state 'tokens' must be an integer array of shape (1, N), got float32 (1, 3)"),
            (with_(tokens=np.ones((3,), dtype=np.int64)),
             "inference state 'tokens' must be an integer array of shape (1, N), got int64 (3,)"),
            (with_(tokens=np.ones((2, 3), dtype=np.int64)),
             "inference state 'tokens' must be an integer array of shape (1, N), got int64 (2, 3)"),
            (with_(input_pos=np.array([0.0, 1.0, 2.0])),
             "inference state 'input_pos' must be a 1-D integer array, got float64 (3,)"),
            (with_(input_pos=np.zeros((0,), dtype=np.int64)),
             "inference state 'input_pos' is empty (no chunk yet), so 'curr_pos' must be 0, got 3"),
            (with_(input_pos=np.zeros((1, 3), dtype=np.int64)),
             "inference state 'input_pos' must be a 1-D integer array, got int64 (1, 3)"),
            (with_(input_pos=np.array([-1, 0, 1])),
             "inference state 'input_pos' must count up by one from a position >= 0, got 3 positions starting at -1"),
            (with_(input_pos=np.array([0, 2, 3])),
             "inference state 'input_pos' must count up by one from a position >= 0, got 3 positions starting at 0"),
            (with_(curr_pos=4), "inference state 'curr_pos' is 4, but 'input_pos' ends at 2"),
            (with_(tokens=np.ones((1, 5), dtype=np.int64)),
             "inference state 'tokens' holds 5 tokens, but 'curr_pos' is 3"),
            (with_(mask=np.ones((3, 3), dtype=bool)),
             "inference state 'mask' must be the causal bool mask of shape (3, 3), got bool (3, 3)"),
            (with_(mask=causal_mask(0, 3).astype(np.int8)),
             "inference state 'mask' must be the causal bool mask of shape (3, 3), got int8 (3, 3)"),
            (with_(mask=causal_mask(1, 3)),
             "inference state 'mask' must be the causal bool mask of shape (3, 3), got bool (3, 4)"),
            ({**ShardInferenceState().to_dict(), "tokens": np.ones((1, 2), dtype=np.int64)},
             "inference state 'tokens' holds 2 tokens, but 'curr_pos' is 0"),
            ({**ShardInferenceState().to_dict(), "mask": np.ones((1, 1), dtype=bool)},
             "inference state 'mask' must be the causal bool mask of shape (0, 0), got bool (1, 1)"),
        ]
        for data, message in cases:
            with self.subTest(message=message):
                with self.assertRaises(InvalidStateError) as raised:
                    ShardInferenceState.from_dict(data)
                self.assertEqual(str(raised.exception), message)

    def test_round_trip(self) -> None:
        data = valid_state(2, 3)
        data["curr_pos"] = np.int32(5)
        state = ShardInferenceState.from_dict(data)
        self.assertEqual(state.curr_pos, 5)
        again = state.to_dict()
        for key in ("tokens", "input_pos", "mask"):
            np.testing.assert_array_equal(again[key], data[key])
        self.assertEqual(again["curr_pos"], 5)
        self.assertIs(type(again["curr_pos"]), int)

    def test_the_empty_state_round_trips(self) -> None:
        """`ShardInferenceState()` (the seed's engines start with it) is a sequence not started yet."""
        data = ShardInferenceState().to_dict()
        self.assertEqual(data["curr_pos"], 0)
        self.assertEqual((data["tokens"].shape, data["input_pos"].shape, data["mask"].shape), ((1, 0), (0,), (0, 0)))
        again = ShardInferenceState.from_dict(data)
        self.assertEqual(again.curr_pos, 0)
        for key in ("tokens", "input_pos", "mask"):
            np.testing.assert_array_equal(getattr(again, key), data[key])
            self.assertEqual(getattr(again, key).dtype, data[key].dtype)
        self.assertIsNot(ShardInferenceState().tokens, ShardInferenceState().tokens)  # no shared default

    def test_causal_mask(self) -> None:
        np.testing.assert_array_equal(causal_mask(0, 2), [[True, False], [True, True]])
        np.testing.assert_array_equal(causal_mask(2, 2), [[True, True, True, False], [True, True, True, True]])
        np.testing.assert_array_equal(causal_mask(3, 1), [[True, True, True, True]])
        self.assertEqual(causal_mask(0, 0).shape, (0, 0))


class ShardSpecTests(unittest.TestCase):
    def test_each_bad_field_is_named(self) -> None:
        cases = [
            (("", 0, 0, 1), "model_id must be a non-empty str, got ''"),
            ((None, 0, 0, 1), "model_id must be a non-empty str, got None"),
            (("m", 0.0, 0, 1), "start_layer must be an int, got 0.0"),
            (("m", 0, True, 2), "end_layer must be an int, got True"),
            (("m", 0, 0, "2"), "n_layers must be an int, got '2'"),
            (("m", 0, 0, 0), "n_layers must be >= 1, got 0"),
            (("m", -1, 0, 2), "start_layer must be >= 0, got -1"),
            (("m", 1, 0, 2), "end_layer must be >= start_layer (1), got 0"),
            (("m", 0, 2, 2), "end_layer must be < n_layers (2), got 2"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                with self.assertRaises(InvalidShardError) as raised:
                    Shard(*args)
                self.assertEqual(str(raised.exception), message)
                self.assertIsInstance(raised.exception, ValueError)

    def test_valid_shard(self) -> None:
        shard = Shard("m", 1, 2, 4)
        self.assertEqual(shard, Shard("m", 1, 2, 4))
        self.assertFalse(shard.is_first_layer())
        self.assertFalse(shard.is_last_layer())
        self.assertEqual(shard.get_layer_count(), 2)
        self.assertTrue(Shard("m", 0, 3, 4).is_first_layer() and Shard("m", 0, 3, 4).is_last_layer())
        single = Shard("m", 0, 0, 1)
        self.assertTrue(single.is_first_layer() and single.is_last_layer())
        self.assertEqual(single.get_layer_count(), 1)


class ModelConfigTests(unittest.TestCase):
    BASE = dict(
        vocab_size=320, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, rms_norm_eps=1e-5, max_position_embeddings=128,
    )

    def test_each_bad_field_is_named(self) -> None:
        cases = [
            (dict(hidden_size="32"), "hidden_size must be an int, got '32'"),
            (dict(vocab_size=True), "vocab_size must be an int, got True"),
            (dict(num_hidden_layers=0), "num_hidden_layers must be >= 1, got 0"),
            (dict(head_dim=0), "head_dim must be >= 1, got 0"),
            (dict(rms_norm_eps=0), "rms_norm_eps must be a finite number > 0, got 0"),
            (dict(rope_theta=math.inf), "rope_theta must be a finite number > 0, got inf"),
            (dict(rope_theta="1e4"), "rope_theta must be a finite number > 0, got '1e4'"),
            (dict(tie_word_embeddings=1), "tie_word_embeddings must be a bool, got 1"),
            (dict(hidden_size=30), "hidden_size (30) must be divisible by num_attention_heads (4)"),
            (dict(num_key_value_heads=3), "num_attention_heads (4) must be divisible by num_key_value_heads (3)"),
            (dict(hidden_size=36), "head_dim must be even for rotary embeddings, got 9"),
            (dict(rope_theta=10**400), f"rope_theta must be a finite number > 0, got {10**400}"),
            (dict(rms_norm_eps=math.nan), "rms_norm_eps must be a finite number > 0, got nan"),
        ]
        for changes, message in cases:
            with self.subTest(changes=changes):
                with self.assertRaises(InvalidConfigError) as raised:
                    ModelConfig(**{**self.BASE, **changes})
                self.assertEqual(str(raised.exception), message)
                # given where the values come from, every message starts with it
                with self.assertRaises(InvalidConfigError) as raised:
                    ModelConfig(**{**self.BASE, **changes}, source="/models/x/config.json")
                self.assertEqual(str(raised.exception), f"/models/x/config.json: {message}")

    def test_defaults(self) -> None:
        config = ModelConfig(**self.BASE)
        self.assertEqual((config.num_key_value_heads, config.head_dim, config.rope_theta), (4, 8, 10000.0))
        self.assertIs(config.tie_word_embeddings, False)
        self.assertEqual(ModelConfig(**{**self.BASE, "head_dim": 6}).head_dim, 6)
        smallest = ModelConfig(**{**self.BASE, "num_key_value_heads": 1, "num_hidden_layers": 1, "head_dim": 2})
        self.assertEqual((smallest.num_key_value_heads, smallest.num_hidden_layers, smallest.head_dim), (1, 1, 2))


class SamplingTests(EngineTestCase):
    async def test_bad_arguments(self) -> None:
        engine, shard = await self.loaded_engine()
        before = self.snapshot(engine)
        logits = np.zeros((1, 2, 5), dtype=np.float32)
        cases = [
            (([1.0],), "logits must be a non-empty floating point numpy array of shape (B, V) or (B, T, V), got list"),
            ((np.zeros((1, 5), dtype=np.int64),),
             "logits must be a non-empty floating point numpy array of shape (B, V) or (B, T, V), got int64 (1, 5)"),
            ((np.zeros((5,), dtype=np.float32),),
             "logits must be a non-empty floating point numpy array of shape (B, V) or (B, T, V), got float32 (5,)"),
            ((np.zeros((1, 0, 5), dtype=np.float32),),
             "logits must be a non-empty floating point numpy array of shape (B, V) or (B, T, V), got float32 (1, 0, 5)"),
            ((np.array([[0.0, np.nan]]),), "logits hold NaN or Inf values (as float32)"),
            ((np.array([[0.0, 1e300]]),), "logits hold NaN or Inf values (as float32)"),
            ((logits, -0.5), "temp must be a finite number >= 0, got -0.5"),
            ((logits, math.nan), "temp must be a finite number >= 0, got nan"),
            ((logits, "hot"), "temp must be a finite number >= 0, got 'hot'"),
            ((logits, True), "temp must be a finite number >= 0, got True"),
            ((logits, 1.0, -1), "top_k must be an int >= 0, got -1"),
            ((logits, 1.0, 2.0), "top_k must be an int >= 0, got 2.0"),
            ((logits, 1.0, False), "top_k must be an int >= 0, got False"),
        ]
        for args, message in cases:
            with self.subTest(message=message):
                with self.assertRaises(InvalidInputError) as raised:
                    await engine.sample(*args)
                self.assertEqual(str(raised.exception), message)
                self.assertUnchanged(before, engine)

    def test_greedy_and_top_k(self) -> None:
        logits = np.array([[[0.0, 5.0, 1.0], [3.0, 0.0, 1.0]]], dtype=np.float32)
        np.testing.assert_array_equal(sample(logits), [[0]])
        np.testing.assert_array_equal(sample(logits, temp=1e-30, top_k=1), [[0]])
        self.assertEqual(sample(logits[:, 0], temp=1.0, top_k=1).tolist(), [[1]])


class TinyBuilderTests(unittest.TestCase):
    def test_vocab_too_small(self) -> None:
        with tempfile.TemporaryDirectory(prefix="shardengine-test-") as parent:
            target = Path(parent) / "never-written"
            with self.assertRaises(ValueError) as raised:
                write_tiny_model(target, vocab=256)
            self.assertEqual(
                str(raised.exception), "vocab must be >= 257 (256 byte tokens and <|endoftext|>), got 256"
            )
            self.assertNotIsInstance(raised.exception, ShardEngineError)
            self.assertFalse(target.exists())


if __name__ == "__main__":
    unittest.main()
