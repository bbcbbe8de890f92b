"""`TorchDynamicShardInferenceEngine`: runs one shard of a Llama-style model for a sharded pipeline.

The engine calls its collaborators (`torch`, `Shard`, `ShardInferenceState`, `ShardedGeneralModel`,
`ShardDownloader`, `load_model_config`, `_resolve_tokenizer`, `load_shard_weights`, `classify_oom`)
through this module's namespace, so a test can patch `shardengine.engine.<name>`. The checks of
the callers' input live in `shardengine.inputs`.

Concurrency: every public call holds one `asyncio.Lock`, and all model and tokenizer work runs on
one worker thread, so the event loop stays responsive and calls run in order. A call cancelled
while its work runs in the thread waits for that work before `CancelledError` leaves it, so the
lock always covers the thread's work. `clear_model()` and `shutdown()` are synchronous and take
no lock: call them only when no call is in flight (say after the calls were awaited), never
while one runs, or the running step loses its model under it.

Threads and speed: each step is one hop to the worker thread (the checks, the model step and the
state), about 0.1 ms on a 2-core machine. torch's OpenMP threads spin after each parallel op; on a
machine whose cores are shared (other busy processes, or another thread of the process that runs
torch ops and so owns its own OpenMP team), that costs the worker a wait for a descheduled or
sleeping thread per op: measured on 2 cores, a tiny-model step went from 0.5 ms to 15 ms with
two busy processes beside it. On such machines set `OMP_WAIT_POLICY=PASSIVE` (before torch is
imported), or give torch fewer threads (`torch.set_num_threads`) before building the engine.

The error contract (pinned by `tests/errors/`):
- `ensure_shard` loads (downloader -> config -> tokenizer -> model -> weights) and sets the
  engine's attributes, `shard` last, only when everything loaded. On any failure the engine is
  left unloaded and the original exception propagates. That includes an out-of-memory error
  while loading (parsing the config or the weights index, loading the tokenizer, building the
  model, opening or reading the weights): it propagates unchanged, never rewrapped into a load
  error, is not counted in `out_of_memory_count`, and empties no cache; only `infer_tensor`'s
  step is recovered from. The same holds for `encode` and `decode`: an out-of-memory error of
  the tokenizer propagates unchanged, never as a `TokenizerError`.
- Bad input raises a typed `ValueError` subclass before the model runs: what the arguments alone
  tell (the shard spec, the request id, the input array's type, dtype and rank, the state dict)
  before the shard is even loaded, and the rest (token ids against the vocabulary, the hidden
  size, the positions, the KV cache's sequence) once it is. `decode` takes token ids of shape
  (N,) or (1, N) only.
- `infer_tensor` checks its input, then runs a step: the new state, the positions and the input
  on the device, one call of `model_instance.generate` (which allocates the KV cache), the
  output's copy back to the host and the state dict. An out-of-memory error of any backend
  (`classify_oom`) anywhere in the step is logged, counted, the model released, the backend's
  cache emptied once, and `(None, None)` returned. The backend is the error's, not the engine's
  device: a host allocation that fails on a CUDA engine (the copy back) is a CPU one, and only
  `gc.collect()` runs; the GPU memory the released model held goes back to torch's cache, not to
  the device. Once `generate` succeeded the engine's state is the step's, like the KV cache, also
  if a later part of the step fails with another error. Any other error propagates as the same
  object, with the model still loaded and the count unchanged. The classification: a
  `torch.OutOfMemoryError` whose message is the MPS allocator's ("MPS backend out of memory")
  is MPS, any other one CUDA; a `MemoryError`, or a RuntimeError with the CPU allocator's
  message, is CPU. Emptying the cache means `torch.cuda.empty_cache()` (CUDA),
  `torch.mps.empty_cache()` (MPS), and on the CPU, which has no allocator cache to empty,
  `gc.collect()`, so that whatever still references the failed step's tensors goes now.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
import torch

from shardengine.config import load_model_config
from shardengine.downloader import ShardDownloader
from shardengine.errors import TokenizerError, classify_oom
from shardengine.inputs import (
    check_continues_cache,
    check_decode_tokens,
    check_decode_vocabulary,
    check_hidden_state,
    check_input_array,
    check_positions,
    check_prompt,
    check_request_id,
    check_shard,
    check_state_dict,
    check_token_ids,
)
from shardengine.model import ShardedGeneralModel
from shardengine.sampling import sample as sample_next_token
from shardengine.shard import Shard
from shardengine.state import ShardInferenceState, causal_mask
from shardengine.tokenizer import _resolve_tokenizer
from shardengine.weights import load_shard_weights

__all__ = [
    "TorchDynamicShardInferenceEngine",
    "default_device",
    "torch",
    "Shard",
    "ShardInferenceState",
    "ShardedGeneralModel",
    "ShardDownloader",
    "load_model_config",
    "_resolve_tokenizer",
    "load_shard_weights",
    "classify_oom",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class _Step(NamedTuple):
    """One checked call of `infer_tensor`: its input chunk (token ids or a hidden state), the
    positions it covers, and the tokens the new state starts from."""

    chunk: np.ndarray
    start: int
    end: int
    previous_tokens: np.ndarray | None
    appends_chunk: bool
    """True on the first shard, whose state's tokens grow by the chunk; a later shard's carry over."""


def default_device() -> torch.device:
    """`$SHARDENGINE_DEVICE` if set, else cuda if available, else mps if available, else cpu."""
    name = os.environ.get("SHARDENGINE_DEVICE")
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


async def _wait_out(future: asyncio.Future) -> None:
    """Wait until `future` is done, whatever cancellations of the waiting task arrive meanwhile."""
    while True:
        try:
            await asyncio.wait({future})
            return
        except asyncio.CancelledError:
            pass


class TorchDynamicShardInferenceEngine:
    """Runs one shard. Attributes: `shard`, `device`, `model_instance`, `inference_state`,
    `tokenizer`, `out_of_memory_count`. The constructor does no I/O."""

    def __init__(self, shard_downloader: ShardDownloader) -> None:
        self.shard_downloader = shard_downloader
        self.shard: Shard | None = None
        self.device = default_device()
        self.model_instance: ShardedGeneralModel | None = None
        self.inference_state: ShardInferenceState | None = None
        self.tokenizer: Any = None
        self.out_of_memory_count = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shardengine")
        self._lock = asyncio.Lock()

    # ----------------------------------------------------------------- running work in the thread

    async def _in_worker(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the worker thread. If this call is cancelled meanwhile (a task's
        `cancel()`, a `wait_for` timeout), wait for the thread's work to end before letting
        `CancelledError` out, so the caller's lock covers that work. A further cancellation during
        that wait (a timeout, then the client going away) is absorbed: the first one still leaves."""
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        try:
            return await asyncio.shield(future)
        finally:
            if not future.done():
                await _wait_out(future)

    # ----------------------------------------------------------------------------------- loading

    async def ensure_shard(self, shard: Shard) -> None:
        """Load `shard` unless it is the one already loaded."""
        async with self._lock:
            await self._ensure_shard_locked(shard)

    async def _ensure_shard_locked(self, shard: Shard) -> None:
        check_shard(shard)
        if shard == self.shard and self.model_instance is not None:
            return
        self.clear_model()
        model_dir = await self.shard_downloader.ensure_shard(shard, type(self).__name__)
        await self._in_worker(self._load_shard, shard, Path(model_dir))

    def _load_shard(self, shard: Shard, model_dir: Path) -> None:
        # The attributes are set here, in the thread, rather than from a returned value: the
        # asyncio future of a finished call may outlive it and must not pin the model.
        config = load_model_config(model_dir)
        tokenizer = _resolve_tokenizer(model_dir)
        model = ShardedGeneralModel(config, shard, device=self.device)
        load_shard_weights(model, model_dir, shard, config)
        self.tokenizer = tokenizer
        self.model_instance = model
        self.shard = shard

    async def load_checkpoint(self, shard: Shard, path: str | Path) -> None:
        """Load the shard's weights from another safetensors file or model directory.

        The weights are validated before anything is copied: a bad checkpoint raises a
        `ShardLoadError` and leaves the loaded weights as they were. A successful load drops the
        KV cache and the inference state, which were computed with the old weights.
        """
        async with self._lock:
            await self._ensure_shard_locked(shard)
            await self._in_worker(self._load_checkpoint, shard, Path(path))

    def _load_checkpoint(self, shard: Shard, path: Path) -> None:
        model = self.model_instance
        load_shard_weights(model, path, shard, model.config)
        model.clear_cache()
        self.inference_state = None

    def clear_model(self) -> None:
        """Drop every reference to the model, its KV cache, the state, the tokenizer and the shard.

        Idempotent. It does not empty any allocator cache (the out-of-memory path does that once).
        """
        model = self.model_instance
        if model is not None:
            model.clear_cache()
        self.model_instance = None
        self.inference_state = None
        self.tokenizer = None
        self.shard = None

    def shutdown(self) -> None:
        """Release the model and stop the worker thread; the engine cannot run anything afterwards."""
        self.clear_model()
        self._executor.shutdown()

    # ---------------------------------------------------------------------------------- tokenizer

    async def encode(self, shard: Shard, prompt: str) -> np.ndarray:
        """Token ids of `prompt`, shape (1, N) int64."""
        check_prompt(prompt)
        async with self._lock:
            await self._ensure_shard_locked(shard)
            return await self._in_worker(self._encode, prompt)

    def _encode(self, prompt: str) -> np.ndarray:
        try:
            ids = self.tokenizer.encode(prompt).ids
        except Exception as exc:
            if classify_oom(exc) is not None:  # out of memory is not the tokenizer's failure
                raise
            raise TokenizerError(f"the tokenizer failed to encode the prompt: {exc}") from exc
        return np.asarray([ids], dtype=np.int64)

    async def decode(self, shard: Shard, tokens: np.ndarray) -> str:
        """The text of token ids of shape (N,) or (1, N)."""
        ids = check_decode_tokens(tokens)
        async with self._lock:
            await self._ensure_shard_locked(shard)
            return await self._in_worker(self._decode, ids)

    def _decode(self, ids: np.ndarray) -> str:
        check_decode_vocabulary(ids, self.tokenizer.get_vocab_size())
        try:
            return self.tokenizer.decode(ids.tolist())
        except Exception as exc:
            if classify_oom(exc) is not None:  # out of memory is not the tokenizer's failure
                raise
            raise TokenizerError(f"the tokenizer failed to decode the tokens: {exc}") from exc

    # ---------------------------------------------------------------------------------- inference

    async def sample(self, x: np.ndarray, temp: float = 0.0, top_k: int = 0) -> np.ndarray:
        """The next token ids (B, 1) from logits (B, T, V) or (B, V); greedy when `temp` is 0."""
        return sample_next_token(x, temp, top_k)

    async def infer_prompt(
        self, request_id: str, shard: Shard, prompt: str, inference_state: dict | None = None
    ) -> tuple[np.ndarray | None, dict | None]:
        """`encode` the prompt, then `infer_tensor` it."""
        tokens = await self.encode(shard, prompt)
        return await self.infer_tensor(request_id, shard, tokens, inference_state)

    async def infer_tensor(
        self, request_id: str, shard: Shard, input_data: np.ndarray, inference_state: dict | None = None
    ) -> tuple[np.ndarray | None, dict | None]:
        """Run the shard over one chunk: token ids (1, T) on the first shard, a hidden state
        (1, T, H) on the others. Returns (logits or hidden state, the state dict for the next
        shard or step), or (None, None) after an out-of-memory error."""
        check_shard(shard)
        check_request_id(request_id)
        array = check_input_array(input_data, shard.is_first_layer())
        state = check_state_dict(inference_state, array, shard.is_first_layer())
        async with self._lock:
            await self._ensure_shard_locked(shard)
            return await self._in_worker(self._infer, request_id, array, state)

    def _check_step(
        self, request_id: str, array: np.ndarray, state: ShardInferenceState | None
    ) -> _Step:
        """The checks of a call of `infer_tensor` against the loaded model, before anything of the
        step is allocated: a typed error, never an out-of-memory recovery, for bad input."""
        # No local names the model: the traceback of an error raised here (which a caller may keep)
        # must not keep the model alive once the engine lets go of it, say in an OOM recovery.
        config = self.model_instance.config
        cache_owner, cache_len = self.model_instance.cache_owner, self.model_instance.cache_len
        if self.shard.is_first_layer():
            chunk = check_token_ids(array, config.vocab_size)
            start = 0 if state is None else state.curr_pos
            step = _Step(chunk, start, start + chunk.shape[1], None if state is None else state.tokens, True)
        else:
            hidden = check_hidden_state(array, config.hidden_size)
            start = int(state.input_pos[0])
            step = _Step(hidden, start, start + hidden.shape[1], state.tokens, False)
        check_positions(step.start, step.end, config.max_position_embeddings)
        check_continues_cache(request_id, step.start, cache_owner, cache_len)
        return step

    def _run_step(self, step: _Step, request_id: str) -> tuple[np.ndarray, dict]:
        """Everything a step allocates, on the host and on the device: the new state, the positions
        and the input on the device, the model's forward (its KV cache included), the output's copy
        back to the host and the state dict. An out-of-memory error in any of it is recovered from."""
        length = step.end - step.start
        if not step.appends_chunk:
            tokens = step.previous_tokens
        elif step.previous_tokens is None:
            tokens = step.chunk
        else:
            tokens = np.concatenate([step.previous_tokens, step.chunk], axis=1)
        new_state = ShardInferenceState(
            tokens=tokens, input_pos=np.arange(step.start, step.end), mask=causal_mask(step.start, length),
            curr_pos=step.end,
        )
        positions = torch.arange(step.start, step.end, device=self.device)
        x = torch.from_numpy(step.chunk).to(self.device)
        output = self.model_instance.generate(x, positions, request_id)
        # the KV cache holds the step now: so does the engine's state, whatever fails after this
        self.inference_state = new_state
        return output.float().cpu().numpy(), new_state.to_dict()

    def _infer(
        self, request_id: str, array: np.ndarray, state: ShardInferenceState | None
    ) -> tuple[np.ndarray | None, dict | None]:
        step = self._check_step(request_id, array, state)
        backend = None
        message = ""
        with torch.inference_mode():
            try:
                output, state_dict = self._run_step(step, request_id)
            except Exception as exc:
                backend = classify_oom(exc)
                if backend is None:
                    raise
                message = str(exc) or type(exc).__name__
        if backend is not None:
            # Outside the except block: the traceback no longer pins the failed step's tensors.
            self._recover_from_oom(backend, message, request_id)
            return None, None
        return output, state_dict

    def _recover_from_oom(self, backend: str, message: str, request_id: str) -> None:
        """Log, count, release the model and empty `backend`'s cache exactly once."""
        logger.error(
            "Out of memory on %s: %s (request %s)",
            backend,
            message,
            request_id,
            extra={"request_id": request_id},
        )
        self.out_of_memory_count += 1
        self.clear_model()
        if backend == "CUDA":
            torch.cuda.empty_cache()
        elif backend == "MPS":
            torch.mps.empty_cache()
        else:
            gc.collect()
