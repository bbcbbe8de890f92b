"""Out-of-memory handling of `infer_tensor`: classification, logging, counting, release, cache emptying.

A CPU out-of-memory error is real here (a KV cache of petabytes, from a config with a huge
`max_position_embeddings`); CUDA and MPS errors cannot be produced on this machine, so those are
raised from a patched `generate`, and `torch.cuda.empty_cache` / `torch.mps.empty_cache` are
replaced by mocks that count calls. `gc.collect` is spied on (it still runs). Every spy also
records whether an exception was being handled when it was called, and whether the engine still
held its model (`tests.support.oom.CacheEmptyingSpies`).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import unittest
import weakref
from unittest import mock

import numpy as np
import pytest
import torch

from gate.testing.leaks import no_leaks
from shardengine.errors import CPU_OOM_MARKER, InvalidInputError, classify_oom
from shardengine.model import ShardedGeneralModel
from shardengine.state import ShardInferenceState
from tests.support.engines import PROMPT, EngineTestCase, full_shard
from tests.support.models import tiny_model_dir
from tests.support.oom import (
    CUDA_MESSAGE,
    HUGE_POSITIONS,
    MPS_MESSAGE,
    CacheEmptyingSpies,
    ModuleWith,
    real_cpu_oom_message,
)


class OomTestCase(EngineTestCase):
    """Counts the cache-emptying calls of every backend for the duration of a test."""

    def setUp(self) -> None:
        super().setUp()
        self.spies = CacheEmptyingSpies(self)

    def assertCacheEmptied(self, cuda: int, mps: int, cpu: int) -> None:
        self.spies.assertEmptied(cuda=cuda, mps=mps, cpu=cpu)

    def assertOomLog(self, records: list[logging.LogRecord], backend: str, message: str, request_id: str) -> None:
        """The first ERROR record of the call is the OOM record, and it is the only one."""
        errors = [record for record in records if record.levelno >= logging.ERROR]
        self.assertEqual(len(errors), 1, [r.getMessage() for r in errors])
        first = errors[0]  # `records` holds exactly the records of the call
        self.assertEqual(first.levelno, logging.ERROR)
        self.assertEqual(first.name, "shardengine.engine")
        self.assertEqual(first.getMessage(), f"Out of memory on {backend}: {message} (request {request_id})")
        self.assertEqual(first.request_id, request_id)

    async def engine_with_cache(self, request_id: str):
        """A loaded engine that has run one step of `request_id`, so its model holds a KV cache and a state."""
        engine, shard = await self.loaded_engine()
        out, state = await engine.infer_tensor(request_id, shard, PROMPT)
        self.assertEqual(out.shape, (1, 3, 320))
        model = engine.model_instance
        self.assertIsNotNone(model.kv_cache)
        self.assertEqual((model.cache_owner, model.cache_len), (request_id, 3))
        self.assertIsNotNone(engine.inference_state)
        return engine, shard, state

    def assertReleased(self, engine, model: ShardedGeneralModel) -> None:
        """The engine is unloaded and the old model's KV cache is gone."""
        self.assertUnloaded(engine)
        self.assertIsNone(model.kv_cache)
        self.assertIsNone(model.cache_owner)
        self.assertEqual(model.cache_len, 0)


class SeedOutOfMemoryTests(OomTestCase):
    """The seed's OOM scenarios, corrected: the engine really has its shard and its model."""

    async def test_seed_infer_tensor_oom(self) -> None:
        """Seed `test_infer_tensor_oom`: a CUDA OOM returns (None, None), counts 1, calls empty_cache
        once, and releases the model and the state."""
        engine, shard, state = await self.engine_with_cache("test_request")
        model = engine.model_instance
        injected = torch.cuda.OutOfMemoryError(CUDA_MESSAGE)
        with mock.patch.object(model, "generate", side_effect=injected) as generate:
            result, new_state = await engine.infer_tensor("test_request", shard, np.array([[4]]), state)
        self.assertIsNone(result)
        self.assertIsNone(new_state)
        self.assertEqual(generate.call_count, 1)
        self.assertEqual(engine.out_of_memory_count, 1)
        self.assertCacheEmptied(cuda=1, mps=0, cpu=0)
        self.assertReleased(engine, model)

    async def test_seed_infer_tensor_oom_logging(self) -> None:
        """Seed `test_infer_tensor_oom_logging`: the first ERROR record is "Out of memory on CUDA: ..."
        with the request id."""
        engine, shard = await self.loaded_engine()
        injected = torch.cuda.OutOfMemoryError(CUDA_MESSAGE)
        with mock.patch.object(engine.model_instance, "generate", side_effect=injected):
            with self.assertLogs("shardengine", level="DEBUG") as logs:
                result = await engine.infer_tensor("test_request", shard, PROMPT)
        self.assertEqual(result, (None, None))
        self.assertOomLog(logs.records, "CUDA", CUDA_MESSAGE, "test_request")
        self.assertEqual(engine.out_of_memory_count, 1)
        self.assertUnloaded(engine)


class BackendTests(OomTestCase):
    async def test_cuda_oom_as_torch_out_of_memory_error_empties_cuda_cache_once(self) -> None:
        engine, shard, state = await self.engine_with_cache("req-cuda")
        model = engine.model_instance
        with mock.patch.object(model, "generate", side_effect=torch.OutOfMemoryError(CUDA_MESSAGE)):
            with self.assertLogs("shardengine", level="DEBUG") as logs:
                result = await engine.infer_tensor("req-cuda", shard, np.array([[4]]), state)
        self.assertEqual(result, (None, None))
        self.assertOomLog(logs.records, "CUDA", CUDA_MESSAGE, "req-cuda")
        self.assertEqual(engine.out_of_memory_count, 1)
        self.assertCacheEmptied(cuda=1, mps=0, cpu=0)
        self.assertReleased(engine, model)

    async def test_mps_oom_raised_as_out_of_memory_error_is_mps_not_cuda(self) -> None:
        engine, shard, state = await self.engine_with_cache("req-mps")
        model = engine.model_instance
        with mock.patch.object(model, "generate", side_effect=torch.OutOfMemoryError(MPS_MESSAGE)):
            with self.assertLogs("shardengine", level="DEBUG") as logs:
                result = await engine.infer_tensor("req-mps", shard, np.array([[4]]), state)
        self.assertEqual(result, (None, None))
        self.assertOomLog(logs.records, "MPS", MPS_MESSAGE, "req-mps")
        self.assertEqual(engine.out_of_memory_count, 1)
        self.assertCacheEmptied(cuda=0, mps=1, cpu=0)
        self.assertReleased(engine, model)

    async def test_mps_oom_raised_as_runtime_error(self) -> None:
        engine, shard = await self.loaded_engine()
        model = engine.model_instance
        with mock.patch.object(model, "generate", side_effect=RuntimeError(MPS_MESSAGE)):
            with self.assertLogs("shardengine", level="DEBUG") as logs:
                result = await engine.infer_tensor("req-mps2", shard, PROMPT)
        self.assertEqual(result, (None, None))
        self.assertOomLog(logs.records, "MPS", MPS_MESSAGE, "req-mps2")
        self.assertEqual(engine.out_of_memory_count, 1)
        self.assertCacheEmptied(cuda=0, mps=1, cpu=0)
        self.assertUnloaded(engine)

    async def test_real_cpu_oom_from_the_kv_cache_allocation(self) -> None:
        """A real allocator failure: the huge config's KV cache cannot be allocated inside generate."""
        engine = self.make_engine()
        shard = full_shard(tiny_model_dir(max_pos=HUGE_POSITIONS))
        await engine.ensure_shard(shard)
        model = engine.model_instance
        self.assertIsNone(model.kv_cache)
        expected = real_cpu_oom_message()
        self.assertIn(CPU_OOM_MARKER, expected)
        with self.assertLogs("shardengine", level="DEBUG") as logs:
            result = await engine.infer_tensor("req-cpu", shard, PROMPT)
        self.assertEqual(result, (None, None))
        self.assertOomLog(logs.records, "CPU", expected, "req-cpu")
        self.assertEqual(engine.out_of_memory_count, 1)
        self.assertCacheEmptied(cuda=0, mps=0, cpu=1)
        self.assertReleased(engine, model)

    async def test_memory_error_is_a_cpu_oom(self) -> None:
        """A real `MemoryError` (a petabyte bytearray) raised inside generate."""

        def allocate_a_petabyte(*args, **kwargs):
            return bytearray(1 << 50)

        engine, shard, state = await self.engine_with_cache("req-mem")
        model = engine.model_instance
        with mock.patch.object(model, "generate", side_effect=allocate_a_petabyte):
            with self.assertLogs("shardengine", level="DEBUG") as logs:
                result = await engine.infer_tensor("req-mem", shard, np.array([[4]]), state)
        self.assertEqual(result, (None, None))
        # a MemoryError has no message: the record names its type rather than ending at the colon
        self.assertEqual(str(MemoryError()), "")
        self.assertOomLog(logs.records, "CPU", "MemoryError", "req-mem")
        self.assertEqual(engine.out_of_memory_count, 1)
        self.assertCacheEmptied(cuda=0, mps=0, cpu=1)
        self.assertReleased(engine, model)


def allocate_a_petabyte(*args, **kwargs):
    """A real host allocation that fails: a `MemoryError` from Python's allocator."""
    return bytearray(1 << 50)


def tensor_failing_on(method: str, error: type[BaseException], message: str) -> type[torch.Tensor]:
    """A tensor class whose `method` (`to`, `cpu`) raises `error(message)`: a copy to or from the
    device that runs out of memory. A new error each time: one kept by the test would pin, through
    its traceback, the failed step's tensors."""

    def fail(self, *args, **kwargs):
        raise error(message)

    return type(f"FailingOn_{method}", (torch.Tensor,), {method: fail})


class StepAllocationTests(OomTestCase):
    """Every allocation of a step is inside the contract, not only `generate`'s: the new state on the
    host, the positions and the input on the device, the forward (its KV cache: `BackendTests`),
    the output's copy back to the host and the state dict. The host allocations fail for real (a
    petabyte); the device ones are injected at the engine's own call (no GPU here)."""

    async def assertStepRecovered(self, patcher, backend: str, message: str, cpu: int, cuda: int) -> None:
        engine, shard, state = await self.engine_with_cache("req-step")
        self.spies.watch(engine)  # the test holds no reference to the model: the release must free it
        with patcher(engine), self.assertLogs("shardengine", level="DEBUG") as logs:
            result = await engine.infer_tensor("req-step", shard, np.array([[4]]), state)
        self.assertEqual(result, (None, None))
        self.assertOomLog(logs.records, backend, message, "req-step")
        self.assertEqual(engine.out_of_memory_count, 1)
        self.assertCacheEmptied(cuda=cuda, mps=0, cpu=cpu)
        self.assertEqual(self.spies.model_alive, [False], "the model still existed when the cache was emptied")
        self.assertUnloaded(engine)
        # and the next call reloads and answers, from a new sequence
        out, new_state = await engine.infer_tensor("req-step", shard, PROMPT)
        self.assertEqual(out.shape, (1, 3, 320))
        self.assertStateDict(new_state, PROMPT, 0, 3)
        self.assertEqual(engine.out_of_memory_count, 1)

    async def test_the_new_state_on_the_host(self) -> None:
        def patcher(engine):
            return mock.patch("shardengine.engine.causal_mask", side_effect=allocate_a_petabyte)

        await self.assertStepRecovered(patcher, "CPU", "MemoryError", cpu=1, cuda=0)

    async def test_the_positions_on_the_device(self) -> None:
        injected = torch.OutOfMemoryError(CUDA_MESSAGE)

        def patcher(engine):
            return mock.patch("shardengine.engine.torch", ModuleWith(torch, arange=mock.Mock(side_effect=injected)))

        await self.assertStepRecovered(patcher, "CUDA", CUDA_MESSAGE, cpu=0, cuda=1)

    async def test_the_input_on_the_device(self) -> None:
        failing = tensor_failing_on("to", torch.OutOfMemoryError, CUDA_MESSAGE)

        def patcher(engine):
            return mock.patch("shardengine.engine.torch",
                              ModuleWith(torch, from_numpy=lambda array: torch.from_numpy(array).as_subclass(failing)))

        await self.assertStepRecovered(patcher, "CUDA", CUDA_MESSAGE, cpu=0, cuda=1)

    async def test_the_output_copied_back_to_the_host(self) -> None:
        """For real on the host: a half-precision output whose float32 copy needs petabytes."""

        def half_precision_petabytes(model, *args, **kwargs):
            return torch.zeros((), dtype=torch.bfloat16).expand(1, HUGE_POSITIONS, 320)

        def patcher(engine):
            return mock.patch.object(ShardedGeneralModel, "generate", half_precision_petabytes)

        with self.assertRaises(RuntimeError) as real:  # the message torch gives for that copy, here
            half_precision_petabytes(None).float()
        self.assertIn(CPU_OOM_MARKER, str(real.exception))
        await self.assertStepRecovered(patcher, "CPU", str(real.exception), cpu=1, cuda=0)

    async def test_the_output_copied_back_from_the_device(self) -> None:
        failing = tensor_failing_on("cpu", torch.OutOfMemoryError, CUDA_MESSAGE)

        def patcher(engine):
            return mock.patch.object(ShardedGeneralModel, "generate", _returning_subclass(failing))

        await self.assertStepRecovered(patcher, "CUDA", CUDA_MESSAGE, cpu=0, cuda=1)

    async def test_the_state_dict(self) -> None:
        def patcher(engine):
            return mock.patch.object(ShardInferenceState, "to_dict", allocate_a_petabyte)

        await self.assertStepRecovered(patcher, "CPU", "MemoryError", cpu=1, cuda=0)

    async def test_bad_input_is_a_typed_error_before_any_allocation(self) -> None:
        """With every device allocation of the step failing, bad input still gets its typed error:
        nothing is counted, logged at ERROR or emptied, and the model stays loaded."""
        engine, shard, state = await self.engine_with_cache("req-bad")
        arange = mock.Mock(side_effect=torch.OutOfMemoryError(CUDA_MESSAGE))
        from_numpy = mock.Mock(side_effect=torch.OutOfMemoryError(CUDA_MESSAGE))
        with mock.patch("shardengine.engine.torch", ModuleWith(torch, arange=arange, from_numpy=from_numpy)), \
                mock.patch("shardengine.engine.causal_mask", side_effect=allocate_a_petabyte) as mask:
            with self.assertRaises(InvalidInputError):
                await engine.infer_tensor("req-bad", shard, np.array([[10**6]]), state)
        for allocation in (arange, from_numpy, mask):
            allocation.assert_not_called()
        self.assertEqual(engine.out_of_memory_count, 0)
        self.assertCacheEmptied(cuda=0, mps=0, cpu=0)
        self.assertLoaded(engine, shard)


class RepeatedOomAndRecoveryTests(OomTestCase):
    async def test_two_real_cpu_ooms_in_a_row_count_two(self) -> None:
        engine = self.make_engine()
        shard = full_shard(tiny_model_dir(max_pos=HUGE_POSITIONS))
        expected = real_cpu_oom_message()
        for attempt, request_id in enumerate(("first", "second"), start=1):
            with self.subTest(attempt=attempt):
                with self.assertLogs("shardengine", level="DEBUG") as logs:
                    result = await engine.infer_tensor(request_id, shard, PROMPT)
                self.assertEqual(result, (None, None))
                self.assertOomLog(logs.records, "CPU", expected, request_id)
                self.assertEqual(engine.out_of_memory_count, attempt)
                self.assertCacheEmptied(cuda=0, mps=0, cpu=attempt)
                self.assertUnloaded(engine)

    async def test_two_cuda_ooms_in_a_row_count_two_and_empty_twice(self) -> None:
        engine, shard = await self.loaded_engine()
        with mock.patch.object(ShardedGeneralModel, "generate", side_effect=torch.OutOfMemoryError(CUDA_MESSAGE)):
            first = await engine.infer_tensor("a", shard, PROMPT)
            self.assertEqual(engine.out_of_memory_count, 1)
            self.assertCacheEmptied(cuda=1, mps=0, cpu=0)
            second = await engine.infer_tensor("b", shard, PROMPT)
        self.assertEqual((first, second), ((None, None), (None, None)))
        self.assertEqual(engine.out_of_memory_count, 2)
        self.assertCacheEmptied(cuda=2, mps=0, cpu=0)
        self.assertUnloaded(engine)

    async def test_next_call_after_cuda_oom_reloads_and_answers(self) -> None:
        reference_engine, shard = await self.loaded_engine()
        expected, expected_state = await reference_engine.infer_tensor("r", shard, PROMPT)
        engine, _ = await self.loaded_engine()
        old_model = engine.model_instance
        with mock.patch.object(old_model, "generate", side_effect=torch.OutOfMemoryError(CUDA_MESSAGE)):
            self.assertEqual(await engine.infer_tensor("r", shard, PROMPT), (None, None))
        out, state = await engine.infer_tensor("r", shard, PROMPT)
        self.assertIsNot(engine.model_instance, old_model)
        self.assertEqual(engine.shard, shard)
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)
        self.assertStateDict(state, PROMPT, 0, 3)
        self.assertEqual(engine.out_of_memory_count, 1)
        self.assertCacheEmptied(cuda=1, mps=0, cpu=0)

    async def test_next_call_after_real_cpu_oom_reloads_and_answers(self) -> None:
        """After the real OOM the operator lowers max_position_embeddings; the same shard reloads."""
        model_dir = self.model_copy(max_pos=HUGE_POSITIONS)
        shard = full_shard(model_dir)
        engine = self.make_engine()
        self.assertEqual(await engine.infer_tensor("r", shard, PROMPT), (None, None))
        self.assertEqual(engine.out_of_memory_count, 1)
        self.assertUnloaded(engine)
        config = json.loads((model_dir / "config.json").read_text())
        config["max_position_embeddings"] = 128
        (model_dir / "config.json").write_text(json.dumps(config))
        out, state = await engine.infer_tensor("r", shard, PROMPT)
        reference_engine, reference_shard = await self.loaded_engine()
        expected, _ = await reference_engine.infer_tensor("r", reference_shard, PROMPT)
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)
        self.assertStateDict(state, PROMPT, 0, 3)
        self.assertEqual(engine.shard, shard)
        self.assertEqual(engine.out_of_memory_count, 1)
        self.assertCacheEmptied(cuda=0, mps=0, cpu=1)


class RecoveryOrderTests(OomTestCase):
    """The release and the emptying happen after the `except` block is left (the traceback no
    longer pins the failed step's tensors), and the cache is emptied only after the model was
    released: each spy records (the exception being handled, the engine's model) when called."""

    async def test_cuda_cache_is_emptied_outside_the_except_block_after_the_release(self) -> None:
        engine, shard, state = await self.engine_with_cache("req")
        self.spies.watch(engine)  # the test holds no reference to the model: the engine's release frees it
        with mock.patch.object(ShardedGeneralModel, "generate", side_effect=torch.OutOfMemoryError(CUDA_MESSAGE)):
            result = await engine.infer_tensor("req", shard, np.array([[4]]), state)
        self.assertEqual(result, (None, None))
        self.assertEqual(self.spies.seen, [(None, None)])
        self.assertEqual(self.spies.model_alive, [False], "the model still existed when the cache was emptied")
        self.assertCacheEmptied(cuda=1, mps=0, cpu=0)
        self.assertUnloaded(engine)

    async def test_real_cpu_oom_collects_garbage_outside_the_except_block_after_the_release(self) -> None:
        engine = self.make_engine()
        shard = full_shard(tiny_model_dir(max_pos=HUGE_POSITIONS))
        await engine.ensure_shard(shard)
        self.spies.watch(engine)
        self.assertEqual(await engine.infer_tensor("req", shard, PROMPT), (None, None))
        self.assertEqual(self.spies.seen, [(None, None)])
        self.assertEqual(self.spies.model_alive, [False], "the model survived the collection")
        self.assertEqual(engine.out_of_memory_count, 1)
        self.assertCacheEmptied(cuda=0, mps=0, cpu=1)


class NotOutOfMemoryTests(OomTestCase):
    """Errors that are not OOMs propagate as the same object; nothing is counted, released or emptied."""

    async def assertPropagatesUnhandled(self, injected: BaseException) -> None:
        engine, shard, state = await self.engine_with_cache("req")
        before = self.snapshot(engine)
        with mock.patch.object(engine.model_instance, "generate", side_effect=injected) as generate:
            with self.assertNoLogs("shardengine", level="ERROR"):
                with self.assertRaises(type(injected)) as raised:
                    await engine.infer_tensor("req", shard, np.array([[4]]), state)
        self.assertIs(raised.exception, injected)
        self.assertEqual(generate.call_count, 1)
        self.assertUnchanged(before, engine)
        self.assertEqual(engine.out_of_memory_count, 0)
        self.assertCacheEmptied(cuda=0, mps=0, cpu=0)

    async def test_runtime_error_with_another_message(self) -> None:
        await self.assertPropagatesUnhandled(RuntimeError("CUDA error: device-side assert triggered"))

    async def test_value_error(self) -> None:
        await self.assertPropagatesUnhandled(ValueError("bad shapes"))

    async def test_base_exception_that_is_not_an_exception(self) -> None:
        class Abort(BaseException):
            pass

        await self.assertPropagatesUnhandled(Abort("stop"))


class ClassifyOomTests(unittest.TestCase):
    def test_table(self) -> None:
        cases = [
            (torch.OutOfMemoryError(CUDA_MESSAGE), "CUDA"),
            (torch.cuda.OutOfMemoryError("anything"), "CUDA"),
            (torch.OutOfMemoryError(MPS_MESSAGE), "MPS"),
            (RuntimeError(MPS_MESSAGE), "MPS"),
            (RuntimeError(f"[enforce fail] {CPU_OOM_MARKER}: you tried to allocate 9 bytes"), "CPU"),
            (MemoryError(), "CPU"),
            (MemoryError("numpy"), "CPU"),
            (RuntimeError("out of memory"), None),
            (RuntimeError("CUDA error: out of memory"), None),
            (ValueError(CPU_OOM_MARKER), None),
            (ValueError(MPS_MESSAGE), None),
            (KeyError("x"), None),
        ]
        for exc, backend in cases:
            with self.subTest(exc=repr(exc)):
                self.assertEqual(classify_oom(exc), backend)


class ClearModelTests(EngineTestCase):
    async def test_clear_model_releases_everything_and_is_idempotent(self) -> None:
        with mock.patch("shardengine.engine.torch.cuda.empty_cache") as empty_cache, mock.patch(
            "shardengine.engine.gc.collect", wraps=gc.collect
        ) as collect:
            engine, shard = await self.loaded_engine()
            await engine.infer_tensor("r", shard, PROMPT)
            model = engine.model_instance
            model_ref = weakref.ref(model)
            cache_ref = weakref.ref(model.kv_cache[0][0])
            engine.clear_model()
            self.assertUnloaded(engine)
            self.assertIsNone(model.kv_cache)
            self.assertIsNone(model.cache_owner)
            self.assertEqual(model.cache_len, 0)
            engine.clear_model()
            self.assertUnloaded(engine)
            self.assertEqual(engine.out_of_memory_count, 0)
            self.assertEqual(empty_cache.call_count, 0)
            self.assertEqual(collect.call_count, 0)
        del model
        gc.collect()
        self.assertIsNone(model_ref())
        self.assertIsNone(cache_ref())

    async def test_clear_model_on_a_new_engine(self) -> None:
        engine = self.make_engine()
        engine.clear_model()
        self.assertUnloaded(engine)
        self.assertEqual(engine.out_of_memory_count, 0)

    async def test_shutdown_releases_the_model_and_stops_the_worker(self) -> None:
        engine, shard = await self.loaded_engine()
        engine.shutdown()
        self.assertUnloaded(engine)
        with self.assertRaises(RuntimeError) as raised:
            await engine.infer_tensor("r", shard, PROMPT)
        self.assertEqual(str(raised.exception), "cannot schedule new futures after shutdown")
        self.assertUnloaded(engine)  # the refused call loaded nothing, and counted nothing
        self.assertEqual(engine.out_of_memory_count, 0)


class LeakFreeRecoveryTests(OomTestCase):
    """Real CPU OOMs and recoveries leave nothing behind, checked by the gate's leak oracle
    (`gate.testing.leaks.no_leaks`: threads, file descriptors, gc-tracked tensors, CUDA memory); the 100
    cycles live in `tests/engine/test_load.py`."""

    async def asyncSetUp(self) -> None:
        # the first step of any engine fills process-wide caches (the RoPE frequencies): that is
        # warm-up, not a leak of the test, which must pass alone as well as after other tests
        await super().asyncSetUp()
        warm = self.make_engine()
        await warm.infer_tensor("warm-up", full_shard(tiny_model_dir()), PROMPT)
        warm.shutdown()

    @no_leaks
    async def test_three_real_ooms_and_recoveries_then_shutdown_leave_nothing(self) -> None:
        """The engine is made, runs out of memory three times, answers after each, and is shut down
        inside the check: its worker thread, models, KV caches and files are all gone."""
        engine = self.make_engine()
        good, huge = full_shard(tiny_model_dir()), full_shard(tiny_model_dir(max_pos=HUGE_POSITIONS))
        expected, _ = await engine.infer_tensor("warm-up", good, PROMPT)
        with self.assertLogs("shardengine", level="DEBUG") as logs:
            for cycle in range(3):
                self.assertEqual(await engine.infer_tensor(f"oom-{cycle}", huge, PROMPT), (None, None))
                self.assertUnloaded(engine)
                out, state = await engine.infer_tensor(f"ok-{cycle}", good, PROMPT)
                np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)
                self.assertStateDict(state, PROMPT, 0, 3)
        message = real_cpu_oom_message()
        self.assertEqual(
            [r.getMessage() for r in logs.records if r.levelno >= logging.ERROR],
            [f"Out of memory on CPU: {message} (request oom-{cycle})" for cycle in range(3)],
        )
        self.assertEqual(engine.out_of_memory_count, 3)
        self.assertCacheEmptied(cuda=0, mps=0, cpu=3)  # the oracle's own collections are not counted
        engine.shutdown()

    async def test_a_kept_bad_input_error_does_not_pin_the_model_through_the_recovery(self) -> None:
        """A caller keeps an `InvalidInputError` (as `gather(return_exceptions=True)` does); the
        next call runs out of memory for real, and the recovery still frees the model: the error's
        traceback holds no reference to it."""
        engine = self.make_engine()
        shard = full_shard(tiny_model_dir(max_pos=HUGE_POSITIONS))
        await engine.ensure_shard(shard)
        model_ref = weakref.ref(engine.model_instance)
        kept = None
        try:  # not assertRaises, which drops the traceback this test is about
            await engine.infer_tensor("bad", shard, np.array([[1, 999]]))
        except InvalidInputError as exc:
            kept = exc
        self.assertIsNotNone(kept, "the bad input was accepted")
        self.assertEqual(str(kept), "token ids must be in [0, 320), got ids from 1 to 999")
        self.assertEqual(await engine.infer_tensor("oom", shard, PROMPT), (None, None))
        self.assertUnloaded(engine)
        self.assertCacheEmptied(cuda=0, mps=0, cpu=1)
        gc.collect()
        self.assertTrue(model_ref() is None, "the kept error's traceback keeps the released model alive")
        self.assertIsNotNone(kept.__traceback__)


class CancelledOutOfMemoryTests(OomTestCase):
    async def test_a_call_cancelled_twice_while_its_step_runs_out_of_memory_keeps_the_lock(self) -> None:
        """Cancelled twice (a timeout, then the client going away) while its step runs out of
        memory for real in the worker: the call keeps the engine's lock until the recovery ends.
        The next call for the same shard then loads it again and runs out of memory too, rather
        than running on a model the recovery pulled from under it."""
        engine = self.make_engine()
        shard = full_shard(tiny_model_dir(max_pos=HUGE_POSITIONS))
        await engine.ensure_shard(shard)
        hold = self.hold(only="first")
        with mock.patch.object(ShardedGeneralModel, "generate", hold.generate()):
            first = asyncio.create_task(engine.infer_tensor("first", shard, PROMPT))
            await hold.started.wait()
            first.cancel()
            await asyncio.sleep(0)  # one turn of the loop: the call takes the cancellation, waits for the worker
            first.cancel()
            second = asyncio.create_task(engine.infer_tensor("second", shard, PROMPT))
            for _ in range(5):
                await asyncio.sleep(0)  # turns of the loop in which a broken engine lets both calls on
            self.assertFalse(first.done(), "the call ended while its step was still running")
            self.assertTrue(engine._lock.locked())
            self.assertEqual(engine.out_of_memory_count, 0)
            with self.assertLogs("shardengine", level="DEBUG") as logs:
                hold.release.set()
                with self.assertRaises(asyncio.CancelledError):
                    await first
                self.assertEqual(await second, (None, None))
        self.assertTrue(hold.finished.is_set())
        self.assertEqual(hold.calls, ["first", "second"])
        message = real_cpu_oom_message()
        self.assertEqual(
            [r.getMessage() for r in logs.records if r.levelno >= logging.ERROR],
            [f"Out of memory on CPU: {message} (request {r})" for r in ("first", "second")],
        )
        self.assertEqual(engine.out_of_memory_count, 2)
        self.assertCacheEmptied(cuda=0, mps=0, cpu=2)
        self.assertUnloaded(engine)
        self.assertFalse(engine._lock.locked())


@pytest.mark.cuda
@unittest.skipUnless(torch.cuda.is_available(), "needs a CUDA GPU")
class CudaOutOfMemoryTests(EngineTestCase):
    """The CUDA paths for real, on a GPU (`pytest -m cuda`; the gate runs them there too, see the
    README): a real CUDA out-of-memory error in the forward, an OOM while the output is copied back,
    a cancelled GPU step. `torch.cuda.empty_cache` really runs (a spy wraps it), and the GPU memory
    the shard held is given back: `torch.cuda.memory_allocated()` returns to its baseline."""

    def setUp(self) -> None:
        super().setUp()
        for patcher in (mock.patch.dict("os.environ", {"SHARDENGINE_DEVICE": "cuda"}),
                        mock.patch("shardengine.engine.torch.cuda.empty_cache", wraps=torch.cuda.empty_cache)):
            started = patcher.start()
            self.addCleanup(patcher.stop)
        self.empty_cache = started

    async def gpu_baseline(self) -> int:
        """GPU memory after one step of another engine: the process-wide caches that step fills (the
        RoPE frequencies on the device) are warm-up, not memory a recovery must give back."""
        warm, shard = await self.loaded_engine()
        self.assertEqual(warm.device.type, "cuda")
        await warm.infer_tensor("warm-up", shard, PROMPT)
        warm.shutdown()
        return self.allocated()

    def allocated(self) -> int:
        gc.collect()
        torch.cuda.synchronize()
        # cuBLAS keeps a workspace per worker thread's handle, counted as allocated: not the shard's
        clear_workspaces = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
        if clear_workspaces is not None:
            clear_workspaces()
        return torch.cuda.memory_allocated()

    def assertRecoveredOnGpu(self, engine, result, records, request_id: str, baseline: int) -> None:
        self.assertEqual(result, (None, None))
        errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
        self.assertEqual(len(errors), 1, errors)
        self.assertTrue(errors[0].startswith("Out of memory on CUDA: "), errors[0])
        self.assertTrue(errors[0].endswith(f" (request {request_id})"), errors[0])
        self.assertEqual(engine.out_of_memory_count, 1)
        self.assertEqual(self.empty_cache.call_count, 1)
        self.assertUnloaded(engine)
        self.assertEqual(self.allocated(), baseline)

    async def test_a_real_oom_in_the_forward(self) -> None:
        baseline = await self.gpu_baseline()
        engine = self.make_engine()
        shard = full_shard(self.model_copy(max_pos=HUGE_POSITIONS))  # its KV cache cannot fit any GPU
        await engine.ensure_shard(shard)
        self.assertGreater(self.allocated(), baseline)  # the weights are on the GPU
        with self.assertLogs("shardengine", level="DEBUG") as logs:
            result = await engine.infer_tensor("gpu-forward", shard, PROMPT)
        self.assertRecoveredOnGpu(engine, result, logs.records, "gpu-forward", baseline)

    async def test_an_oom_copying_the_output_back(self) -> None:
        baseline = await self.gpu_baseline()
        engine, shard = await self.loaded_engine()
        failing = tensor_failing_on("cpu", torch.OutOfMemoryError, CUDA_MESSAGE)
        with mock.patch.object(ShardedGeneralModel, "generate", _returning_subclass(failing)):
            with self.assertLogs("shardengine", level="DEBUG") as logs:
                result = await engine.infer_tensor("gpu-copy", shard, PROMPT)
        self.assertRecoveredOnGpu(engine, result, logs.records, "gpu-copy", baseline)

    async def test_a_cancelled_gpu_step_that_runs_out_of_memory(self) -> None:
        """Cancelled while its step runs on the GPU and runs out of memory for real: the call keeps
        the lock until the recovery ends, and the GPU memory is given back."""
        baseline = await self.gpu_baseline()
        engine = self.make_engine()
        shard = full_shard(self.model_copy(max_pos=HUGE_POSITIONS))
        await engine.ensure_shard(shard)
        hold = self.hold()
        with mock.patch.object(ShardedGeneralModel, "generate", hold.generate()):
            call = asyncio.create_task(engine.infer_tensor("gpu-cancelled", shard, PROMPT))
            await hold.started.wait()
            call.cancel()
            await asyncio.sleep(0)
            self.assertTrue(engine._lock.locked())
            with self.assertLogs("shardengine", level="DEBUG") as logs:
                hold.release.set()
                with self.assertRaises(asyncio.CancelledError):
                    await call
        self.assertRecoveredOnGpu(engine, (None, None), logs.records, "gpu-cancelled", baseline)
        self.assertFalse(engine._lock.locked())


def _returning_subclass(cls: type[torch.Tensor]):
    """`ShardedGeneralModel.generate`, with its output seen as a `cls` tensor."""
    real = ShardedGeneralModel.generate

    def generate(model, *args, **kwargs):
        return real(model, *args, **kwargs).as_subclass(cls)

    return generate


if __name__ == "__main__":
    unittest.main()
