"""`TorchDynamicShardInferenceEngine`: runs one shard of a Llama-style model for a sharded pipeline.

The engine calls its collaborators (`torch`, `Shard`, `ShardInferenceState`, `ShardedGeneralModel`,
`ShardDownloader`, `load_model_config`, `_resolve_tokenizer`, `load_shard_weights`, `classify_oom`)
through this module's namespace, so a test can patch `shardengine.engine.<name>`.

Concurrency: every public call holds one `asyncio.Lock`, and all model and tokenizer work runs on
one worker thread, so the event loop stays responsive and calls run in order. A call cancelled
while its work runs in the thread waits for that work before `CancelledError` leaves it, so the
lock always covers the thread's work.

The error contract (pinned by `tests/errors/`):
- `ensure_shard` loads (downloader -> config -> tokenizer -> model -> weights) and sets the
  engine's attributes, `shard` last, only when everything loaded. On any failure the engine is
  left unloaded and the original exception propagates.
- Bad input raises a typed `ValueError` subclass before the model runs.
- `infer_tensor` runs the model through one call of `model_instance.generate`. An out-of-memory
  error of any backend is logged, counted, the model released, the backend's cache emptied once,
  and `(None, None)` returned. Any other error propagates as the same object, with the model
  still loaded and the count unchanged.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from shardengine.config import load_model_config
from shardengine.downloader import ShardDownloader
from shardengine.errors import (
    InvalidInputError,
    InvalidPromptError,
    InvalidShardError,
    InvalidStateError,
    InvalidTokensError,
    TokenizerError,
    classify_oom,
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


def _check_shard(shard: Any) -> None:
    if not isinstance(shard, Shard):
        raise InvalidShardError(f"shard must be a Shard, got {type(shard).__name__}")


def _check_prompt(prompt: Any) -> None:
    if not isinstance(prompt, str) or not prompt:
        raise InvalidPromptError(
            f"prompt must be a non-empty str, got {'an empty str' if isinstance(prompt, str) else type(prompt).__name__}"
        )


def _check_tokens(tokens: Any) -> np.ndarray:
    """The structural checks of `decode` (the vocabulary check needs the tokenizer): ids as 1-D."""
    if not isinstance(tokens, np.ndarray):
        raise InvalidTokensError(f"tokens must be a numpy array, got {type(tokens).__name__}")
    if not np.issubdtype(tokens.dtype, np.integer):
        raise InvalidTokensError(f"tokens must have an integer dtype, got {tokens.dtype}")
    if tokens.ndim not in (1, 2) or (tokens.ndim == 2 and tokens.shape[0] != 1):
        raise InvalidTokensError(f"tokens must have shape (N,) or (1, N), got {tokens.shape}")
    if tokens.size and tokens.min() < 0:
        raise InvalidTokensError(f"token ids must be >= 0, got {tokens.min()}")
    return tokens.reshape(-1)


def _check_array(input_data: Any) -> np.ndarray:
    if not isinstance(input_data, np.ndarray):
        raise InvalidInputError(f"input_data must be a numpy array, got {type(input_data).__name__}")
    return input_data


def _check_token_input(input_data: np.ndarray, vocab_size: int) -> np.ndarray:
    """Token ids for the first shard: (1, T) integers in [0, vocab_size), as int64."""
    if not np.issubdtype(input_data.dtype, np.integer):
        raise InvalidInputError(f"the first shard takes integer token ids, got dtype {input_data.dtype}")
    if input_data.ndim != 2 or input_data.shape[0] != 1 or input_data.shape[1] == 0:
        raise InvalidInputError(
            f"the first shard takes token ids of shape (1, T) with T >= 1, got shape {input_data.shape}"
        )
    if input_data.min() < 0 or input_data.max() >= vocab_size:
        raise InvalidInputError(
            f"token ids must be in [0, {vocab_size}), got ids from {input_data.min()} to {input_data.max()}"
        )
    return input_data.astype(np.int64)


def _check_hidden_input(input_data: np.ndarray, hidden_size: int) -> np.ndarray:
    """A hidden state for a later shard: (1, T, hidden_size), finite as float32."""
    if not np.issubdtype(input_data.dtype, np.floating):
        raise InvalidInputError(f"a later shard takes a floating point hidden state, got dtype {input_data.dtype}")
    if input_data.ndim != 3 or input_data.shape[0] != 1 or input_data.shape[1] == 0 or input_data.shape[2] != hidden_size:
        raise InvalidInputError(
            f"a later shard takes a hidden state of shape (1, T, {hidden_size}) with T >= 1, "
            f"got shape {input_data.shape}"
        )
    with np.errstate(over="ignore"):  # an overflow becomes inf, which the next check rejects
        hidden = input_data.astype(np.float32)
    if not np.isfinite(hidden).all():
        raise InvalidInputError("the hidden state holds NaN or Inf values (as float32)")
    return hidden


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
        _check_shard(shard)
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
        _check_prompt(prompt)
        async with self._lock:
            await self._ensure_shard_locked(shard)
            return await self._in_worker(self._encode, prompt)

    def _encode(self, prompt: str) -> np.ndarray:
        try:
            ids = self.tokenizer.encode(prompt).ids
        except Exception as exc:
            raise TokenizerError(f"the tokenizer failed to encode the prompt: {exc}") from exc
        return np.asarray([ids], dtype=np.int64)

    async def decode(self, shard: Shard, tokens: np.ndarray) -> str:
        """The text of token ids of shape (N,) or (1, N)."""
        ids = _check_tokens(tokens)
        async with self._lock:
            await self._ensure_shard_locked(shard)
            return await self._in_worker(self._decode, ids)

    def _decode(self, ids: np.ndarray) -> str:
        vocab_size = self.tokenizer.get_vocab_size()
        if ids.size and ids.max() >= vocab_size:
            raise InvalidTokensError(f"token id {ids.max()} is out of range for a vocabulary of {vocab_size}")
        try:
            return self.tokenizer.decode(ids.tolist())
        except Exception as exc:
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
        async with self._lock:
            await self._ensure_shard_locked(shard)
            return await self._in_worker(self._infer, request_id, input_data, inference_state)

    def _prepare(
        self, request_id: Any, input_data: Any, state_dict: Any
    ) -> tuple[torch.Tensor, torch.Tensor, ShardInferenceState]:
        """Validate a call of `infer_tensor`: the model input, its positions, and the new state."""
        if not isinstance(request_id, str) or not request_id:
            raise InvalidInputError(
                f"request_id must be a non-empty str, got "
                f"{'an empty str' if isinstance(request_id, str) else type(request_id).__name__}"
            )
        # No local names the model: the traceback of an error raised here (which a caller may keep)
        # must not keep the model alive once the engine lets go of it, say in an OOM recovery.
        config = self.model_instance.config
        cache_owner, cache_len = self.model_instance.cache_owner, self.model_instance.cache_len
        array = _check_array(input_data)
        state = None if state_dict is None else ShardInferenceState.from_dict(state_dict)
        if self.shard.is_first_layer():
            chunk = _check_token_input(array, config.vocab_size)
            start = 0 if state is None else state.curr_pos
            history = np.zeros((1, 0), dtype=np.int64) if state is None else state.tokens
            tokens = np.concatenate([history, chunk], axis=1)
            x = torch.from_numpy(chunk)
        else:
            if state is None:
                raise InvalidStateError("a shard that does not start at layer 0 needs the inference state")
            hidden = _check_hidden_input(array, config.hidden_size)
            if hidden.shape[1] != state.input_pos.size:
                raise InvalidStateError(
                    f"the hidden state has {hidden.shape[1]} positions, "
                    f"but the inference state's input_pos has {state.input_pos.size}"
                )
            start, tokens = int(state.input_pos[0]), state.tokens
            x = torch.from_numpy(hidden)
        length = x.shape[1]
        end = start + length
        if end > config.max_position_embeddings:
            raise InvalidInputError(
                f"positions {start} to {end - 1} exceed max_position_embeddings ({config.max_position_embeddings})"
            )
        if start > 0 and (cache_owner != request_id or cache_len != start):
            raise InvalidStateError(
                f"request {request_id!r} at position {start} does not continue the KV cache, "
                f"which holds request {cache_owner!r} up to position {cache_len}"
            )
        new_state = ShardInferenceState(
            tokens=tokens, input_pos=np.arange(start, end), mask=causal_mask(start, length), curr_pos=end
        )
        positions = torch.arange(start, end, device=self.device)
        return x.to(self.device), positions, new_state

    def _infer(
        self, request_id: str, input_data: Any, state_dict: Any
    ) -> tuple[np.ndarray | None, dict | None]:
        x, positions, state = self._prepare(request_id, input_data, state_dict)
        backend = None
        message = ""
        with torch.inference_mode():
            try:
                output = self.model_instance.generate(x, positions, request_id)
            except Exception as exc:
                backend = classify_oom(exc)
                if backend is None:
                    raise
                message = str(exc)
        if backend is not None:
            # Outside the except block: the traceback no longer pins the failed step's tensors.
            self._recover_from_oom(backend, message, request_id)
            return None, None
        self.inference_state = state
        return output.float().cpu().numpy(), state.to_dict()

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
