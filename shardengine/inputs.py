"""Validation of what callers give the engine: each function checks one argument and raises the
typed error (a `ShardEngineError` and a `ValueError`) that says what is wrong, before any model
work is done.

Two kinds: checks that need nothing but the argument (and the shard spec), which the engine runs
before it loads anything, and checks against the loaded model's config or KV cache (the vocabulary,
the hidden size, the positions, the cached sequence), which it runs once the shard is loaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shardengine.errors import (
    InvalidInputError,
    InvalidPromptError,
    InvalidShardError,
    InvalidStateError,
    InvalidTokensError,
)
from shardengine.shard import Shard
from shardengine.state import ShardInferenceState

__all__ = [
    "check_shard",
    "check_prompt",
    "check_decode_tokens",
    "check_decode_vocabulary",
    "check_request_id",
    "check_input_array",
    "check_state_dict",
    "check_token_ids",
    "check_hidden_state",
    "check_positions",
    "check_continues_cache",
]


def _kind(value: Any) -> str:
    """How a message names a bad value: 'an empty str' or its type's name."""
    return "an empty str" if isinstance(value, str) else type(value).__name__


# ------------------------------------------------------------------- before anything is loaded


def check_shard(shard: Any) -> None:
    if not isinstance(shard, Shard):
        raise InvalidShardError(f"shard must be a Shard, got {type(shard).__name__}")


def check_prompt(prompt: Any) -> None:
    """`encode`'s prompt: a non-empty str."""
    if not isinstance(prompt, str) or not prompt:
        raise InvalidPromptError(f"prompt must be a non-empty str, got {_kind(prompt)}")


def check_decode_tokens(tokens: Any) -> np.ndarray:
    """`decode`'s tokens, structurally (the vocabulary check needs the tokenizer): integer ids of
    shape (N,) or (1, N), none negative. Returns them as 1-D."""
    if not isinstance(tokens, np.ndarray):
        raise InvalidTokensError(f"tokens must be a numpy array, got {type(tokens).__name__}")
    if not np.issubdtype(tokens.dtype, np.integer):
        raise InvalidTokensError(f"tokens must have an integer dtype, got {tokens.dtype}")
    if tokens.ndim not in (1, 2) or (tokens.ndim == 2 and tokens.shape[0] != 1):
        raise InvalidTokensError(f"tokens must have shape (N,) or (1, N), got {tokens.shape}")
    if tokens.size and tokens.min() < 0:
        raise InvalidTokensError(f"token ids must be >= 0, got {tokens.min()}")
    return tokens.reshape(-1)


def check_request_id(request_id: Any) -> None:
    """`infer_tensor`'s request id: a non-empty str."""
    if not isinstance(request_id, str) or not request_id:
        raise InvalidInputError(f"request_id must be a non-empty str, got {_kind(request_id)}")


def check_input_array(input_data: Any, first_shard: bool) -> np.ndarray:
    """`infer_tensor`'s input, as far as the shard spec tells: on the first shard, integer token
    ids of shape (1, T); on a later one, a floating point hidden state of shape (1, T, H); T >= 1.
    The ids' range and the width H are checked against the config once it is loaded."""
    if not isinstance(input_data, np.ndarray):
        raise InvalidInputError(f"input_data must be a numpy array, got {type(input_data).__name__}")
    if first_shard:
        if not np.issubdtype(input_data.dtype, np.integer):
            raise InvalidInputError(f"the first shard takes integer token ids, got dtype {input_data.dtype}")
        if input_data.ndim != 2 or input_data.shape[0] != 1 or input_data.shape[1] == 0:
            raise InvalidInputError(
                f"the first shard takes token ids of shape (1, T) with T >= 1, got shape {input_data.shape}"
            )
    else:
        if not np.issubdtype(input_data.dtype, np.floating):
            raise InvalidInputError(
                f"a later shard takes a floating point hidden state, got dtype {input_data.dtype}"
            )
        if input_data.ndim != 3 or input_data.shape[0] != 1 or input_data.shape[1] == 0:
            raise InvalidInputError(
                f"a later shard takes a hidden state of shape (1, T, hidden_size) with T >= 1, "
                f"got shape {input_data.shape}"
            )
    return input_data


def check_state_dict(state_dict: Any, input_data: np.ndarray, first_shard: bool) -> ShardInferenceState | None:
    """The inference state handed to `infer_tensor`, as a `ShardInferenceState` (None: none given).

    A later shard needs one, and its `input_pos` must have one position per row of the hidden state.
    """
    state = None if state_dict is None else ShardInferenceState.from_dict(state_dict)
    if first_shard:
        return state
    if state is None:
        raise InvalidStateError("a shard that does not start at layer 0 needs the inference state")
    if input_data.shape[1] != state.input_pos.size:
        raise InvalidStateError(
            f"the hidden state has {input_data.shape[1]} positions, "
            f"but the inference state's input_pos has {state.input_pos.size}"
        )
    return state


# ------------------------------------------------------------- against the loaded model


def check_decode_vocabulary(ids: np.ndarray, vocab_size: int) -> None:
    """`decode`'s ids against the tokenizer's vocabulary, before the tokenizer is called."""
    if ids.size and ids.max() >= vocab_size:
        raise InvalidTokensError(f"token id {ids.max()} is out of range for a vocabulary of {vocab_size}")


def check_token_ids(input_data: np.ndarray, vocab_size: int) -> np.ndarray:
    """The first shard's token ids against the vocabulary: in [0, vocab_size). Returns them as int64."""
    if input_data.min() < 0 or input_data.max() >= vocab_size:
        raise InvalidInputError(
            f"token ids must be in [0, {vocab_size}), got ids from {input_data.min()} to {input_data.max()}"
        )
    return input_data.astype(np.int64)


def check_hidden_state(input_data: np.ndarray, hidden_size: int) -> np.ndarray:
    """A later shard's hidden state against the config: width `hidden_size`, finite as float32.
    Returns it as float32."""
    if input_data.shape[2] != hidden_size:
        raise InvalidInputError(
            f"a later shard takes a hidden state of shape (1, T, {hidden_size}) with T >= 1, "
            f"got shape {input_data.shape}"
        )
    with np.errstate(over="ignore"):  # an overflow becomes inf, which the next check rejects
        hidden = input_data.astype(np.float32)
    if not np.isfinite(hidden).all():
        raise InvalidInputError("the hidden state holds NaN or Inf values (as float32)")
    return hidden


def check_positions(start: int, end: int, max_positions: int) -> None:
    """The chunk's positions [start, end) fit the model's `max_position_embeddings`."""
    if end > max_positions:
        raise InvalidInputError(f"positions {start} to {end - 1} exceed max_position_embeddings ({max_positions})")


def check_continues_cache(request_id: str, start: int, cache_owner: str | None, cache_len: int) -> None:
    """A chunk after position 0 must continue the sequence in the KV cache: the same request, and
    the cache holding exactly the positions before it."""
    if start > 0 and (cache_owner != request_id or cache_len != start):
        raise InvalidStateError(
            f"request {request_id!r} at position {start} does not continue the KV cache, "
            f"which holds request {cache_owner!r} up to position {cache_len}"
        )
