"""The engine under load and faults: many concurrent calls with real CPU OOMs among them,
cancellation and timeouts of calls in flight or queued, and no leak after many OOM-and-recover
cycles (checked with the gate's leak oracle, `gate.testing.leaks.no_leaks`).

Real OOMs come from a second model directory whose `max_position_embeddings` makes a KV cache of
petabytes (the allocation fails inside `generate`); calls alternate between it and the ordinary
tiny model. The worker thread is held inside `generate` (or the weight loading) by
`tests.support.engines.Hold`, which reports to the event loop through an `asyncio.Event`, so no
test waits for a guessed time.

(`tests/errors/test_dependency_failures.py` already pins that one cancellation waits for the
worker and a timeout of a running call arrives after it; these tests add queued calls, OOMs and
loads under cancellation, and a second cancellation.)
"""

from __future__ import annotations

import asyncio
import gc
import os
import weakref
from typing import Any
from unittest import mock

import numpy as np
import pytest

from gate.testing.leaks import no_leaks
from shardengine.engine import ShardedGeneralModel, load_shard_weights
from shardengine.errors import InvalidInputError
from tests.support.engines import PROMPT, EngineTestCase, full_shard
from tests.support.models import tiny_model_dir
from tests.support.oom import HUGE_POSITIONS, CacheEmptyingSpies, real_cpu_oom_message

# the concurrent workload, one letter a call: g a good call, o a call that runs out of memory for
# real, b bad input (a token id outside the vocabulary); runs of each, and every transition
PLAN = "gogg oogb gogo bogg oggo gbgo oogg gbog bbgo"


class LoadTestCase(EngineTestCase):
    """A good tiny model, one whose KV cache cannot be allocated, and spies on the OOM contract."""

    def setUp(self) -> None:
        super().setUp()
        self.good = full_shard(tiny_model_dir())
        self.huge = full_shard(tiny_model_dir(max_pos=HUGE_POSITIONS))
        self.spies = CacheEmptyingSpies(self)
        self.gc_collect, self.cuda_empty_cache, self.mps_empty_cache = self.spies.gc, self.spies.cuda, self.spies.mps

    async def reference(self, prompt: np.ndarray) -> np.ndarray:
        """The logits of `prompt` (a new sequence) computed alone, on an engine that runs one
        call at a time and never runs out of memory."""
        if not hasattr(self, "reference_engine"):
            self.reference_engine = self.make_engine()
        out, _ = await self.reference_engine.infer_tensor("reference", self.good, prompt)
        return out

    def assertCpuOomHandled(self, engine, count: int) -> None:
        """The contract after `count` CPU OOMs: counted, the allocator's cache "emptied" (gc) once each."""
        self.assertEqual(engine.out_of_memory_count, count)
        self.assertEqual(self.gc_collect.call_count, count)
        self.cuda_empty_cache.assert_not_called()
        self.mps_empty_cache.assert_not_called()

    def assertOomRecords(self, records, request_ids: list[str]) -> None:
        message = real_cpu_oom_message()
        errors = [record for record in records if record.levelname == "ERROR"]
        self.assertEqual(
            [record.getMessage() for record in errors],
            [f"Out of memory on CPU: {message} (request {request_id})" for request_id in request_ids],
        )
        self.assertEqual([record.request_id for record in errors], request_ids)


class ConcurrentLoadTests(LoadTestCase):
    async def test_concurrent_calls_with_real_ooms_among_them(self) -> None:
        """Every good call answers as if alone, every OOM returns (None, None) and is logged,
        counted, released and emptied once, bad input raises; calls run in order."""
        plan = PLAN.replace(" ", "")
        rng = np.random.default_rng(9)
        prompts = [rng.integers(0, 320, size=(1, int(rng.integers(1, 9)))) for _ in plan]
        for index, kind in enumerate(plan):
            if kind == "b":
                prompts[index][0, -1] = 320 + index  # one id outside the vocabulary
        expected = {i: await self.reference(prompts[i]) for i, kind in enumerate(plan) if kind == "g"}
        oom_ids = [f"req-{i}" for i, kind in enumerate(plan) if kind == "o"]
        self.assertGreaterEqual(len(oom_ids), 10)

        built: list[weakref.ref] = []

        def build(*args: Any, **kwargs: Any) -> ShardedGeneralModel:
            model = ShardedGeneralModel(*args, **kwargs)
            built.append(weakref.ref(model))
            return model

        engine = self.make_engine()
        calls = [
            engine.infer_tensor(f"req-{i}", self.huge if kind == "o" else self.good, prompts[i])
            for i, kind in enumerate(plan)
        ]
        with mock.patch("shardengine.engine.ShardedGeneralModel", build):
            with self.assertLogs("shardengine", level="DEBUG") as logs:
                results = await asyncio.gather(*calls, return_exceptions=True)

        for index, (kind, result) in enumerate(zip(plan, results)):
            with self.subTest(call=index, kind=kind):
                if kind == "o":
                    self.assertEqual(result, (None, None))
                elif kind == "b":
                    self.assertIsInstance(result, InvalidInputError)
                    self.assertEqual(
                        str(result), f"token ids must be in [0, 320), got ids from "
                                     f"{prompts[index].min()} to {320 + index}"
                    )
                else:
                    out, state = result
                    np.testing.assert_allclose(out, expected[index], rtol=0, atol=1e-6)
                    self.assertStateDict(state, prompts[index], 0, prompts[index].shape[1])
        self.assertCpuOomHandled(engine, len(oom_ids))
        self.assertOomRecords(logs.records, oom_ids)  # in call order: the calls ran in order

        # a model is built exactly when the call's shard is not the one loaded (after an OOM, none is)
        loaded, loads = None, 0
        for kind in plan:
            shard = self.huge if kind == "o" else self.good
            loads += loaded != shard
            loaded = None if kind == "o" else shard
        self.assertEqual(len(built), loads)
        # the caller still holds every result, the bad-input errors too: their tracebacks must
        # not keep the models the engine let go of (after the last OOM, none is loaded)
        self.assertEqual(plan[-1], "o")
        self.assertUnloaded(engine)
        gc.collect()
        self.assertEqual(sum(ref() is not None for ref in built), 0, "models of the calls are still alive")

        # the engine serves the next call
        out, state = await engine.infer_tensor("after", self.good, PROMPT)
        np.testing.assert_allclose(out, await self.reference(PROMPT), rtol=0, atol=1e-6)
        self.assertStateDict(state, PROMPT, 0, 3)
        self.assertEqual(engine.out_of_memory_count, len(oom_ids))


class CancellationUnderLoadTests(LoadTestCase):
    async def test_cancelled_and_timed_out_queued_calls_never_run(self) -> None:
        """Calls queued behind a running one: two cancelled, one timed out while waiting. They
        never reach the model; the others answer in order; the lock is free afterwards."""
        prompts = [np.array([[i + 1, i + 2]]) for i in range(7)]
        expected = [await self.reference(prompt) for prompt in prompts]
        engine = self.make_engine()
        await engine.ensure_shard(self.good)
        hold = self.hold(only="r0")
        with mock.patch.object(ShardedGeneralModel, "generate", hold.generate()):
            tasks = [asyncio.create_task(engine.infer_tensor(f"r{i}", self.good, p)) for i, p in enumerate(prompts)]
            timed = asyncio.create_task(asyncio.wait_for(engine.infer_tensor("timed", self.good, PROMPT), 0.05))
            await hold.started.wait()  # r0 runs in the worker; r1..r6 and "timed" wait for the lock
            tasks[2].cancel()
            tasks[5].cancel()
            with self.assertRaises(TimeoutError):
                await timed
            self.assertFalse(hold.finished.is_set())  # it timed out in the queue, r0 still running
            self.assertTrue(engine._lock.locked())
            hold.release.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)

        self.assertEqual(hold.calls, ["r0", "r1", "r3", "r4", "r6"])
        for index, result in enumerate(results):
            with self.subTest(call=index):
                if index in (2, 5):
                    self.assertIsInstance(result, asyncio.CancelledError)
                else:
                    np.testing.assert_allclose(result[0], expected[index], rtol=0, atol=1e-6)
                    self.assertStateDict(result[1], prompts[index], 0, 2)
        self.assertFalse(engine._lock.locked())
        self.assertLoaded(engine, self.good)
        self.assertEqual((engine.model_instance.cache_owner, engine.model_instance.cache_len), ("r6", 2))
        self.assertEqual(engine.inference_state.curr_pos, 2)
        self.assertCpuOomHandled(engine, 0)
        # the last request continues from its state, as it would have without the cancellations
        _, state = results[6]
        out, state = await engine.infer_tensor("r6", self.good, np.array([[9]]), state)
        reference = self.make_engine()
        _, reference_state = await reference.infer_tensor("r6", self.good, prompts[6])
        reference_out, _ = await reference.infer_tensor("r6", self.good, np.array([[9]]), reference_state)
        np.testing.assert_allclose(out, reference_out, rtol=0, atol=1e-6)
        self.assertStateDict(state, np.array([[7, 8, 9]]), 2, 1)

    async def assertRecoveredAfterCancelledOom(self, engine, model_ref, logs, hold) -> None:
        """The cancelled call's OOM was still handled in full, and the engine serves the next call."""
        self.assertTrue(hold.finished.is_set())
        self.assertFalse(engine._lock.locked())
        self.assertCpuOomHandled(engine, 1)
        self.assertOomRecords(logs.records, ["doomed"])
        self.assertUnloaded(engine)
        gc.collect()
        self.assertIsNone(model_ref())
        out, state = await engine.infer_tensor("next", self.good, PROMPT)
        np.testing.assert_allclose(out, await self.reference(PROMPT), rtol=0, atol=1e-6)
        self.assertStateDict(state, PROMPT, 0, 3)
        self.assertEqual(engine.out_of_memory_count, 1)

    async def test_cancelling_a_call_whose_step_runs_out_of_memory(self) -> None:
        """The caller sees CancelledError, not (None, None), but the OOM is recovered from in full."""
        engine = self.make_engine()
        await engine.ensure_shard(self.huge)
        model_ref = weakref.ref(engine.model_instance)
        hold = self.hold()
        with mock.patch.object(ShardedGeneralModel, "generate", hold.generate()):
            task = asyncio.create_task(engine.infer_tensor("doomed", self.huge, PROMPT))
            await hold.started.wait()
            task.cancel()
            with self.assertLogs("shardengine", level="DEBUG") as logs:
                hold.release.set()
                with self.assertRaises(asyncio.CancelledError):
                    await task
        await self.assertRecoveredAfterCancelledOom(engine, model_ref, logs, hold)

    async def test_a_timeout_of_a_call_whose_step_runs_out_of_memory(self) -> None:
        engine = self.make_engine()
        await engine.ensure_shard(self.huge)
        model_ref = weakref.ref(engine.model_instance)
        hold = self.hold()
        timeout = 0.05
        with mock.patch.object(ShardedGeneralModel, "generate", hold.generate()):
            with self.assertLogs("shardengine", level="DEBUG") as logs:
                timed = asyncio.create_task(asyncio.wait_for(engine.infer_tensor("doomed", self.huge, PROMPT), timeout))
                await hold.started.wait()
                # wait_for's timer started before the step did, so this one is due after it: the
                # timeout always fires while the worker is still held
                asyncio.get_running_loop().call_later(timeout, hold.release.set)
                with self.assertRaises(TimeoutError):
                    await timed
        await self.assertRecoveredAfterCancelledOom(engine, model_ref, logs, hold)

    async def test_cancelling_a_load_leaves_the_shard_loaded_whole(self) -> None:
        """A call cancelled while its shard loads in the worker: the load completes (the engine
        is never half loaded), and the next call uses that model without loading again."""
        engine = self.make_engine()
        hold = self.hold()
        with mock.patch("shardengine.engine.load_shard_weights", side_effect=hold.wrap(load_shard_weights)) as load:
            task = asyncio.create_task(engine.infer_tensor("r", self.good, PROMPT))
            await hold.started.wait()
            self.assertUnloaded(engine)  # nothing is set until the weights are in
            task.cancel()
            hold.release.set()
            with self.assertRaises(asyncio.CancelledError):
                await task
            self.assertFalse(engine._lock.locked())
            self.assertLoaded(engine, self.good)
            model = engine.model_instance
            self.assertIsNone(engine.inference_state)
            self.assertEqual((model.kv_cache, model.cache_owner, model.cache_len), (None, None, 0))
            out, state = await engine.infer_tensor("r", self.good, PROMPT)
            self.assertEqual(load.call_count, 1)
        self.assertIs(engine.model_instance, model)
        np.testing.assert_allclose(out, await self.reference(PROMPT), rtol=0, atol=1e-6)
        self.assertStateDict(state, PROMPT, 0, 3)
        self.assertCpuOomHandled(engine, 0)

    async def test_a_second_cancellation_still_waits_for_the_worker(self) -> None:
        """Cancelled twice (say a timeout, then the client going away): the call still holds the
        lock until its step ends, so the next call, for another model, cannot unload the model
        under the running step or have its state overwritten by it."""
        other = full_shard(tiny_model_dir(seed=7))
        engine = self.make_engine()
        await engine.ensure_shard(self.good)
        model = engine.model_instance
        hold = self.hold(only="first")
        with mock.patch.object(ShardedGeneralModel, "generate", hold.generate()):
            first = asyncio.create_task(engine.infer_tensor("first", self.good, PROMPT))
            await hold.started.wait()
            first.cancel()
            await asyncio.sleep(0)  # one turn of the loop: the call takes the cancellation, waits for the worker
            first.cancel()
            second = asyncio.create_task(engine.infer_tensor("second", other, PROMPT))
            for _ in range(5):
                await asyncio.sleep(0)  # turns of the loop in which a broken engine lets both calls on
            self.assertFalse(first.done(), "the call ended while its step was still running")
            self.assertTrue(engine._lock.locked())
            self.assertIs(engine.model_instance, model)
            self.assertEqual(hold.calls, ["first"])
            hold.release.set()
            with self.assertRaises(asyncio.CancelledError):
                await first
            out, state = await second
        self.assertEqual(hold.calls, ["first", "second"])
        self.assertLoaded(engine, other)
        self.assertEqual((engine.model_instance.cache_owner, engine.model_instance.cache_len), ("second", 3))
        self.assertStateDict(state, PROMPT, 0, 3)
        self.assertEqual(engine.inference_state.curr_pos, 3)
        reference = self.make_engine()
        expected, _ = await reference.infer_tensor("second", other, PROMPT)
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


class NoLeakTests(LoadTestCase):
    """100 OOM-and-recover cycles leave the threads, descriptors, tensors (and CUDA memory) as they were."""

    CYCLES = 100

    async def run_cycles(self) -> None:
        engine = self.make_engine()
        expected, _ = await engine.infer_tensor("warm-up", self.good, PROMPT)  # the worker thread exists
        with self.assertLogs("shardengine", level="ERROR") as logs:
            async with no_leaks():
                for cycle in range(self.CYCLES):
                    self.assertEqual(await engine.infer_tensor(f"oom-{cycle}", self.huge, PROMPT), (None, None))
                    self.assertUnloaded(engine)
                    out, _ = await engine.infer_tensor(f"ok-{cycle}", self.good, PROMPT)
                    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)
                del out
        self.assertEqual(len(logs.records), self.CYCLES)
        self.assertEqual(engine.out_of_memory_count, self.CYCLES)
        self.assertLoaded(engine, self.good)

    @pytest.mark.slow
    async def test_no_leak_after_100_real_cpu_oom_and_recover_cycles(self) -> None:
        with mock.patch.dict(os.environ, {"SHARDENGINE_DEVICE": "cpu"}):
            await self.run_cycles()
        self.assertEqual(self.gc_collect.call_count, self.CYCLES)  # the oracle's own collections are not counted
        self.cuda_empty_cache.assert_not_called()

    @pytest.mark.slow
    @pytest.mark.cuda
    async def test_no_leak_after_100_real_cuda_oom_and_recover_cycles(self) -> None:
        """On a GPU the KV cache fails on the device; `no_leaks` also compares `memory_allocated()`."""
        import torch

        torch.cuda.init()
        with mock.patch.dict(os.environ, {"SHARDENGINE_DEVICE": "cuda"}):
            await self.run_cycles()
        self.assertEqual(self.cuda_empty_cache.call_count, self.CYCLES)
