"""Failures of the engine's collaborators: the load steps, the tokenizer, the model, the worker thread.

Names are patched in `shardengine.engine`, as the seed patches exo's engine module. Unlike the
seed, the engine really has its shard (a real tiny model is loaded first), the injected error is
set on the object the engine actually calls, and every test asserts the state the engine is left in.
"""

from __future__ import annotations

import asyncio
import gc
import json
import unittest
import weakref
from pathlib import Path
from unittest import mock

import numpy as np
import torch

import shardengine.engine as engine_module
from shardengine.downloader import LocalShardDownloader, ShardDownloader
from shardengine.engine import TorchDynamicShardInferenceEngine
from shardengine.errors import CorruptWeightsError, InvalidStateError, InvalidTokensError, TokenizerError
from shardengine.model import ShardedGeneralModel
from shardengine.shard import Shard
from tests.support.engines import PROMPT, EngineTestCase, full_shard
from tests.support.models import tiny_model_dir
from tests.support.oom import HUGE_POSITIONS, CacheEmptyingSpies, out_of_memory_errors


class FailingDownloader(ShardDownloader):
    """A downloader whose `ensure_shard` raises a given error for one model id."""

    def __init__(self, failing_model_id: str, error: BaseException) -> None:
        self.failing_model_id = failing_model_id
        self.error = error
        self.local = LocalShardDownloader("/nonexistent-root")
        self.calls: list[tuple[Shard, str]] = []

    async def ensure_shard(self, shard: Shard, engine_name: str) -> Path:
        self.calls.append((shard, engine_name))
        if shard.model_id == self.failing_model_id:
            raise self.error
        return await self.local.ensure_shard(shard, engine_name)


class SeedScenarioTests(EngineTestCase):
    """The seed's scenarios, with both of its flaws fixed."""

    async def test_seed_encode_tokenizer_error_is_wrapped(self) -> None:
        """Seed `test_encode_invalid_prompt`, the scenario of the tokenizer itself raising
        ("Invalid prompt") while encoding a valid str (a prompt that is not a str is
        `tests/errors/test_negative_inputs.py`'s seed scenario). Unlike the seed, the error is set
        on the tokenizer `_resolve_tokenizer` returns (not on the resolver), the shard really
        loads, and encode wraps the tokenizer's error in a `TokenizerError`."""
        injected = Exception("Invalid prompt")
        tokenizer = mock.MagicMock(name="tokenizer")
        tokenizer.encode.side_effect = injected
        engine = self.make_engine()
        shard = full_shard(tiny_model_dir())
        with mock.patch("shardengine.engine._resolve_tokenizer", return_value=tokenizer) as resolve:
            with self.assertRaises(TokenizerError) as raised:
                await engine.encode(shard, "invalid_prompt")
        self.assertEqual(str(raised.exception), "the tokenizer failed to encode the prompt: Invalid prompt")
        self.assertIs(raised.exception.__cause__, injected)
        self.assertIsInstance(raised.exception, ValueError)
        resolve.assert_called_once_with(Path(shard.model_id))
        tokenizer.encode.assert_called_once_with("invalid_prompt")
        self.assertLoaded(engine, shard)
        self.assertIs(engine.tokenizer, tokenizer)
        self.assertEqual(engine.out_of_memory_count, 0)

    async def test_seed_decode_invalid_tokens(self) -> None:
        """Seed `test_decode_invalid_tokens`: an id outside the vocabulary is rejected before the
        tokenizer's decode is called; the tokenizer's own failure is a separate test below."""
        engine, shard = await self.loaded_engine()
        real = engine.tokenizer
        tokenizer = mock.MagicMock(name="tokenizer", wraps=real)
        tokenizer.decode.side_effect = Exception("Invalid tokens")
        engine.tokenizer = tokenizer
        with self.assertRaises(InvalidTokensError) as raised:
            await engine.decode(shard, np.array([[999999]]))
        self.assertEqual(str(raised.exception), "token id 999999 is out of range for a vocabulary of 320")
        tokenizer.decode.assert_not_called()
        tokenizer.get_vocab_size.assert_called_once_with()
        self.assertLoaded(engine, shard)
        self.assertIs(engine.tokenizer, tokenizer)

    async def test_seed_decode_tokenizer_failure_is_wrapped(self) -> None:
        engine, shard = await self.loaded_engine()
        injected = Exception("Invalid tokens")
        tokenizer = mock.MagicMock(name="tokenizer", wraps=engine.tokenizer)
        tokenizer.decode.side_effect = injected
        engine.tokenizer = tokenizer
        before = self.snapshot(engine)
        with self.assertRaises(TokenizerError) as raised:
            await engine.decode(shard, np.array([[5, 6]]))
        self.assertEqual(str(raised.exception), "the tokenizer failed to decode the tokens: Invalid tokens")
        self.assertIs(raised.exception.__cause__, injected)
        tokenizer.decode.assert_called_once_with([5, 6])
        self.assertLoaded(engine, shard)
        self.assertUnchanged(before, engine)  # the same model, tokenizer and state; nothing counted

    async def test_seed_infer_tensor_runtime_error(self) -> None:
        """Seed `test_infer_tensor_runtime_error`: a RuntimeError from the model propagates as the same
        object, the OOM count stays 0, and the model, state and KV cache stay as they were."""
        engine, shard = await self.loaded_engine()
        _, state = await engine.infer_tensor("test_request", shard, PROMPT)
        before = self.snapshot(engine)
        injected = RuntimeError("Model failure")
        with mock.patch("shardengine.engine.torch.cuda.empty_cache") as empty_cache:
            with mock.patch.object(engine.model_instance, "generate", side_effect=injected) as generate:
                with self.assertRaises(RuntimeError) as raised:
                    await engine.infer_tensor("test_request", shard, np.array([[4]]), state)
        self.assertIs(raised.exception, injected)
        generate.assert_called_once()
        self.assertEqual(engine.out_of_memory_count, 0)
        empty_cache.assert_not_called()
        self.assertUnchanged(before, engine)
        out, _ = await engine.infer_tensor("test_request", shard, np.array([[4]]), state)
        self.assertEqual(out.shape, (1, 1, 320))

    async def test_seed_ensure_shard_exception(self) -> None:
        """Seed `test_ensure_shard_exception`: a config failure leaves the engine unloaded, also when
        another shard was loaded before, and the original exception propagates."""
        engine, loaded = await self.loaded_engine()
        other = Shard(loaded.model_id, 0, 0, 2)
        injected = Exception("Config load failure")
        with mock.patch("shardengine.engine.load_model_config", side_effect=injected) as load_config, mock.patch(
            "shardengine.engine.ShardedGeneralModel"
        ) as model_class:
            with self.assertRaises(Exception) as raised:
                await engine.ensure_shard(other)
        self.assertIs(raised.exception, injected)
        load_config.assert_called_once_with(Path(other.model_id))
        model_class.assert_not_called()
        self.assertUnloaded(engine)


class LoadStepFailureTests(EngineTestCase):
    """Each load step fails in turn; the engine ends unloaded, the old model released, later steps
    not run. Nothing counts as an out-of-memory recovery, even an OOM: loading has none (the
    error propagates unchanged, and no cache is emptied)."""

    def setUp(self) -> None:
        super().setUp()
        self.spies = CacheEmptyingSpies(self)

    def assertNoRecovery(self, engine: TorchDynamicShardInferenceEngine) -> None:
        self.assertEqual(engine.out_of_memory_count, 0)
        self.spies.assertEmptied(cuda=0, mps=0, cpu=0)

    async def assertLoadStepFails(self, injected: BaseException, patches: dict[str, mock.Mock]):
        """Load a shard, then load another one with `patches` applied to the load steps.

        Returns the engine, the shard that failed, and spies on the load steps that were not replaced.
        """
        engine, _ = await self.loaded_engine()
        old_model_ref = weakref.ref(engine.model_instance)
        target = Shard(engine.shard.model_id, 1, 1, 2)
        started = {}
        for name in ("load_model_config", "_resolve_tokenizer", "ShardedGeneralModel", "load_shard_weights"):
            if name in patches:
                patcher = mock.patch(f"shardengine.engine.{name}", patches[name])
            else:
                patcher = mock.patch(f"shardengine.engine.{name}", wraps=getattr(engine_module, name))
            started[name] = patcher.start()
            self.addCleanup(patcher.stop)
        with self.assertNoLogs("shardengine", level="ERROR"), self.assertRaises(BaseException) as raised:
            await engine.ensure_shard(target)
        self.assertIs(raised.exception, injected)
        self.assertUnloaded(engine)
        self.assertNoRecovery(engine)
        del raised
        gc.collect()
        self.assertIsNone(old_model_ref())
        return engine, target, started

    async def test_downloader_failure(self) -> None:
        model_id = str(tiny_model_dir())
        injected = ConnectionError("hub unreachable")
        downloader = FailingDownloader(model_id, injected)
        engine = TorchDynamicShardInferenceEngine(downloader)
        self.addCleanup(engine.shutdown)
        with mock.patch("shardengine.engine.load_model_config") as load_config:
            with self.assertNoLogs("shardengine", level="ERROR"), self.assertRaises(ConnectionError) as raised:
                await engine.ensure_shard(Shard(model_id, 0, 1, 2))
        self.assertIs(raised.exception, injected)
        self.assertEqual(downloader.calls, [(Shard(model_id, 0, 1, 2), "TorchDynamicShardInferenceEngine")])
        load_config.assert_not_called()
        self.assertUnloaded(engine)
        self.assertNoRecovery(engine)

    async def test_downloader_failure_releases_the_loaded_shard(self) -> None:
        model_id = str(tiny_model_dir())
        injected = ConnectionError("hub unreachable")
        downloader = FailingDownloader("other-model", injected)
        engine = TorchDynamicShardInferenceEngine(downloader)
        self.addCleanup(engine.shutdown)
        await engine.ensure_shard(Shard(model_id, 0, 1, 2))
        old_model_ref = weakref.ref(engine.model_instance)
        with self.assertNoLogs("shardengine", level="ERROR"), self.assertRaises(ConnectionError) as raised:
            await engine.ensure_shard(Shard("other-model", 0, 1, 2))
        self.assertIs(raised.exception, injected)
        self.assertUnloaded(engine)
        self.assertNoRecovery(engine)
        del raised
        gc.collect()
        self.assertIsNone(old_model_ref())

    async def test_config_failure(self) -> None:
        injected = OSError("disk read error")
        _, _, spies = await self.assertLoadStepFails(injected, {"load_model_config": mock.Mock(side_effect=injected)})
        spies["_resolve_tokenizer"].assert_not_called()
        spies["ShardedGeneralModel"].assert_not_called()

    async def test_tokenizer_failure(self) -> None:
        injected = RuntimeError("tokenizer exploded")
        _, target, spies = await self.assertLoadStepFails(
            injected, {"_resolve_tokenizer": mock.Mock(side_effect=injected)}
        )
        spies["load_model_config"].assert_called_once_with(Path(target.model_id))
        spies["ShardedGeneralModel"].assert_not_called()

    async def test_out_of_memory_while_building_the_model_propagates(self) -> None:
        """An OOM while building the model (allocating its weights) is a load failure like any
        other: it propagates as the same object, uncounted, and no cache is emptied."""
        injected = torch.OutOfMemoryError("CUDA out of memory while building the model")
        _, _, spies = await self.assertLoadStepFails(
            injected, {"ShardedGeneralModel": mock.Mock(side_effect=injected)}
        )
        spies["_resolve_tokenizer"].assert_called_once()
        spies["load_shard_weights"].assert_not_called()

    async def test_weights_failure(self) -> None:
        injected = ValueError("weights failure")
        engine, target, spies = await self.assertLoadStepFails(
            injected, {"load_shard_weights": mock.Mock(side_effect=injected)}
        )
        spies["ShardedGeneralModel"].assert_called_once()

    async def test_real_cpu_oom_while_building_the_model_propagates(self) -> None:
        """A real allocator failure in the model step: a config whose vocabulary needs petabytes of
        embedding. It propagates unchanged and uncounted, nothing is logged or emptied, the weights
        are never read, and the engine is left unloaded."""
        engine, loaded = await self.loaded_engine()
        model_dir = self.model_copy()
        config_path = model_dir / "config.json"
        config = json.loads(config_path.read_text())
        config["vocab_size"] = HUGE_POSITIONS  # 10**14 x hidden 32 x 4 bytes: 12.8 PB
        config_path.write_text(json.dumps(config))
        old_model_ref = weakref.ref(engine.model_instance)
        with mock.patch("shardengine.engine.ShardedGeneralModel", wraps=ShardedGeneralModel) as build, \
                mock.patch("shardengine.engine.load_shard_weights", wraps=engine_module.load_shard_weights) as weights:
            with self.assertNoLogs("shardengine", level="ERROR"), self.assertRaises(RuntimeError) as caught:
                await engine.ensure_shard(Shard(str(model_dir), 0, 0, 2))
        self.assertIn("DefaultCPUAllocator: can't allocate memory", str(caught.exception))
        self.assertEqual(engine_module.classify_oom(caught.exception), "CPU")
        build.assert_called_once()  # the model step ran, and the weights step never did: it failed there
        weights.assert_not_called()
        self.assertUnloaded(engine)
        self.assertNoRecovery(engine)
        del caught
        gc.collect()
        self.assertIsNone(old_model_ref())
        out, _ = await engine.infer_tensor("next", loaded, PROMPT)  # and it loads the good model again
        self.assertEqual(out.shape, (1, 3, 320))

    async def test_engine_loads_again_after_a_failed_load(self) -> None:
        engine, shard = await self.loaded_engine()
        with mock.patch("shardengine.engine.load_shard_weights", side_effect=ValueError("once")):
            with self.assertRaises(ValueError):
                await engine.ensure_shard(Shard(shard.model_id, 0, 0, 2))
        self.assertUnloaded(engine)
        out, state = await engine.infer_tensor("r", shard, PROMPT)
        self.assertEqual(out.shape, (1, 3, 320))
        self.assertLoaded(engine, shard)
        self.assertStateDict(state, PROMPT, 0, 3)


class RealTokenizerFailureTests(EngineTestCase):
    async def test_prompt_the_tokenizer_cannot_encode(self) -> None:
        """A lone surrogate is a non-empty str, but the real tokenizer cannot take it."""
        engine, shard = await self.loaded_engine()
        before = self.snapshot(engine)
        with self.assertRaises(TokenizerError) as raised:
            await engine.encode(shard, "ok \ud800")
        cause = raised.exception.__cause__
        self.assertIsInstance(cause, TypeError)
        self.assertEqual(str(cause), "TextInputSequence must be str")
        self.assertEqual(
            str(raised.exception), "the tokenizer failed to encode the prompt: TextInputSequence must be str"
        )
        self.assertUnchanged(before, engine)


class TokenizerOutOfMemoryTests(EngineTestCase):
    """An out-of-memory error of the tokenizer is not its failure: `encode` and `decode` let it
    through as the same object, never a `TokenizerError`, uncounted, and the shard stays loaded.
    Injected on the real tokenizer's call (`tokenizers` aborts the process rather than raise)."""

    async def assertPropagates(self, method: str, call) -> None:
        for injected in out_of_memory_errors():
            with self.subTest(type(injected).__name__):
                engine, shard = await self.loaded_engine()
                tokenizer = mock.MagicMock(name="tokenizer", wraps=engine.tokenizer)
                getattr(tokenizer, method).side_effect = injected
                engine.tokenizer = tokenizer
                before = self.snapshot(engine)
                with self.assertNoLogs("shardengine", level="ERROR"), self.assertRaises(BaseException) as raised:
                    await call(engine, shard)
                self.assertIs(raised.exception, injected)
                self.assertIsNone(raised.exception.__cause__)
                getattr(tokenizer, method).assert_called_once()
                self.assertUnchanged(before, engine)  # the same model, tokenizer and state; nothing counted

    async def test_encode(self) -> None:
        await self.assertPropagates("encode", lambda engine, shard: engine.encode(shard, "hello"))

    async def test_decode(self) -> None:
        await self.assertPropagates("decode", lambda engine, shard: engine.decode(shard, np.array([[5, 6]])))


class CancellationTests(EngineTestCase):
    """A call cancelled while its work runs in the worker thread waits for that work to end.

    The worker is held inside `generate` by `tests.support.engines.Hold` until the test releases
    it, so no test waits for a guessed time."""

    async def test_cancel_waits_for_the_worker_then_raises_cancelled(self) -> None:
        engine, shard = await self.loaded_engine()
        hold = self.hold()
        with mock.patch.object(ShardedGeneralModel, "generate", hold.generate()):
            task = asyncio.create_task(engine.infer_tensor("r", shard, PROMPT))
            await hold.started.wait()
            task.cancel()
            for _ in range(20):
                await asyncio.sleep(0)  # turns of the loop in which a broken engine lets the call end
            self.assertFalse(task.done(), "the cancelled call returned before its work in the thread ended")
            self.assertFalse(hold.finished.is_set())
            self.assertTrue(engine._lock.locked())
            hold.release.set()
            with self.assertRaises(asyncio.CancelledError):
                await task
        self.assertTrue(hold.finished.is_set())
        self.assertFalse(engine._lock.locked())
        # the work finished in the thread, so the engine holds its result and can continue from it
        self.assertLoaded(engine, shard)
        self.assertEqual(engine.model_instance.cache_len, 3)
        self.assertEqual(engine.inference_state.curr_pos, 3)
        out, state = await engine.infer_tensor("r", shard, np.array([[4]]), engine.inference_state.to_dict())
        self.assertEqual(out.shape, (1, 1, 320))
        self.assertEqual(state["curr_pos"], 4)

    async def test_wait_for_timeout_arrives_after_the_worker_finished(self) -> None:
        engine, shard = await self.loaded_engine()
        hold = self.hold()
        timeout = 0.03
        with mock.patch.object(ShardedGeneralModel, "generate", hold.generate()):
            timed = asyncio.create_task(asyncio.wait_for(engine.infer_tensor("r", shard, PROMPT), timeout))
            await hold.started.wait()
            # wait_for's timer started before the step did, so this one is due after it: the
            # timeout always fires while the worker is still held
            asyncio.get_running_loop().call_later(timeout, hold.release.set)
            with self.assertRaises(TimeoutError):
                await timed
        self.assertTrue(hold.finished.is_set(), "the timeout escaped while the worker was still running")
        self.assertFalse(engine._lock.locked())
        self.assertEqual(engine.model_instance.cache_len, 3)
        self.assertEqual(engine.inference_state.curr_pos, 3)


class FailureInsideTheRealStepTests(EngineTestCase):
    """A failure inside the real `generate` (its attention raising), not a replaced `generate`:
    the error propagates, the model stays loaded, and the KV cache's bookkeeping is as
    `ShardedGeneralModel.generate` documents it."""

    def fail_attention(self, injected: BaseException):
        return mock.patch("shardengine.model.F.scaled_dot_product_attention", side_effect=injected)

    async def test_a_failed_continuation_leaves_the_cached_sequence_to_retry(self) -> None:
        engine, shard = await self.loaded_engine()
        _, state = await engine.infer_tensor("r", shard, PROMPT)
        before = self.snapshot(engine)
        injected = RuntimeError("attention kernel failed")
        with self.fail_attention(injected) as attention:
            with self.assertRaises(RuntimeError) as raised:
                await engine.infer_tensor("r", shard, np.array([[4]]), state)
        self.assertIs(raised.exception, injected)
        attention.assert_called_once()  # the first layer's attention, inside the real step
        self.assertUnchanged(before, engine)  # still loaded; the cache holds request 'r' up to 3
        self.assertEqual((engine.model_instance.cache_owner, engine.model_instance.cache_len), ("r", 3))
        # retried, the step answers as an engine that never failed does
        out, new_state = await engine.infer_tensor("r", shard, np.array([[4]]), state)
        reference, _ = await self.make_engine().infer_tensor("r", shard, np.array([[1, 2, 3, 4]]))
        np.testing.assert_allclose(out[0, -1], reference[0, -1], rtol=0, atol=1e-5)
        self.assertStateDict(new_state, np.array([[1, 2, 3, 4]]), 3, 1)

    async def test_a_failed_new_sequence_forgets_the_cached_one(self) -> None:
        engine, shard = await self.loaded_engine()
        _, old_state = await engine.infer_tensor("old", shard, PROMPT)
        model, inference_state = engine.model_instance, engine.inference_state
        injected = RuntimeError("attention kernel failed")
        with self.fail_attention(injected):
            with self.assertRaises(RuntimeError) as raised:
                await engine.infer_tensor("new", shard, np.array([[5, 6]]))
        self.assertIs(raised.exception, injected)
        self.assertLoaded(engine, shard)
        self.assertIs(engine.model_instance, model)
        self.assertIs(engine.inference_state, inference_state)  # only a step that succeeds replaces it
        self.assertEqual(engine.out_of_memory_count, 0)
        # the layers began overwriting the old sequence's cache, so it is forgotten, not stale
        self.assertEqual((model.cache_owner, model.cache_len), (None, 0))
        with self.assertRaises(InvalidStateError) as rejected:
            await engine.infer_tensor("old", shard, np.array([[4]]), old_state)
        self.assertEqual(
            str(rejected.exception),
            "request 'old' at position 3 does not continue the KV cache, which holds request None up to position 0",
        )
        out, state = await engine.infer_tensor("new", shard, np.array([[5, 6]]))
        self.assertEqual(out.shape, (1, 2, 320))
        self.assertEqual((model.cache_owner, model.cache_len), ("new", 2))


class LoadCheckpointFailureTests(EngineTestCase):
    async def test_corrupt_checkpoint_leaves_the_weights_and_cache_as_they_were(self) -> None:
        engine, shard = await self.loaded_engine()
        _, state = await engine.infer_tensor("r", shard, PROMPT)
        weights_before = {name: p.detach().clone() for name, p in engine.model_instance.hf_parameters()}
        before = self.snapshot(engine)
        bad = self.temp_dir() / "bad.safetensors"
        bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
        with self.assertRaises(CorruptWeightsError) as raised:
            await engine.load_checkpoint(shard, bad)
        self.assertEqual(str(raised.exception), f"{bad}: not a valid safetensors file: {raised.exception.__cause__}")
        self.assertUnchanged(before, engine)
        for name, param in engine.model_instance.hf_parameters():
            self.assertTrue(torch.equal(param, weights_before[name]), name)
        out, _ = await engine.infer_tensor("r", shard, np.array([[4]]), state)
        self.assertEqual(out.shape, (1, 1, 320))


if __name__ == "__main__":
    unittest.main()
