"""`ShardInferenceState`: what one shard hands the next, and what the engine keeps between calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shardengine.errors import InvalidStateError

__all__ = ["ShardInferenceState", "causal_mask", "STATE_KEYS"]

STATE_KEYS = ("curr_pos", "input_pos", "mask", "tokens")


def causal_mask(start: int, length: int) -> np.ndarray:
    """The causal mask of `length` new positions after `start` cached ones: (length, start + length) bool.

    Row i (position start + i) may attend to every position <= start + i.
    """
    return np.arange(start + length)[None, :] <= np.arange(start, start + length)[:, None]


def _is_integer_array(array: np.ndarray) -> bool:
    return np.issubdtype(array.dtype, np.integer)


def _no_tokens() -> np.ndarray:
    return np.zeros((1, 0), dtype=np.int64)


def _no_positions() -> np.ndarray:
    return np.zeros((0,), dtype=np.int64)


def _no_mask() -> np.ndarray:
    return causal_mask(0, 0)


@dataclass
class ShardInferenceState:
    """The chunk of a sequence just processed.

    `tokens` (1, N) int: every token id of the sequence so far; `input_pos` (T,) int: the chunk's
    positions; `mask` (T, curr_pos) bool: the chunk's causal mask; `curr_pos`: the next position.
    `ShardInferenceState()` is the empty state of a sequence that has not started: no tokens, no
    positions, a (0, 0) mask and `curr_pos` 0. It round-trips through `to_dict`/`from_dict` like
    any other, and a first shard given it starts a new sequence, as with no state at all.
    """

    tokens: np.ndarray = field(default_factory=_no_tokens)
    input_pos: np.ndarray = field(default_factory=_no_positions)
    mask: np.ndarray = field(default_factory=_no_mask)
    curr_pos: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of numpy arrays and an int, safe to pickle or send to another process."""
        return {
            "tokens": np.array(self.tokens, copy=True),
            "input_pos": np.array(self.input_pos, copy=True),
            "mask": np.array(self.mask, copy=True),
            "curr_pos": int(self.curr_pos),
        }

    @classmethod
    def from_dict(cls, data: Any) -> ShardInferenceState:
        """Rebuild a state from `to_dict()`'s output, checking that it is complete and consistent."""
        if not isinstance(data, dict):
            raise InvalidStateError(f"inference state must be a dict, got {type(data).__name__}")
        if set(data) != set(STATE_KEYS):
            raise InvalidStateError(
                f"inference state must have the keys {', '.join(STATE_KEYS)}; "
                f"got {', '.join(sorted(map(repr, data)))}"
            )
        for name in ("tokens", "input_pos", "mask"):
            if not isinstance(data[name], np.ndarray):
                raise InvalidStateError(
                    f"inference state {name!r} must be a numpy array, got {type(data[name]).__name__}"
                )
        tokens, input_pos, mask, curr_pos = data["tokens"], data["input_pos"], data["mask"], data["curr_pos"]
        if isinstance(curr_pos, (bool, np.bool_)) or not isinstance(curr_pos, (int, np.integer)):
            raise InvalidStateError(f"inference state 'curr_pos' must be an int, got {type(curr_pos).__name__}")
        if not _is_integer_array(tokens) or tokens.ndim != 2 or tokens.shape[0] != 1:
            raise InvalidStateError(
                f"inference state 'tokens' must be an integer array of shape (1, N), "
                f"got {tokens.dtype} {tokens.shape}"
            )
        if not _is_integer_array(input_pos) or input_pos.ndim != 1:
            raise InvalidStateError(
                f"inference state 'input_pos' must be a 1-D integer array, got {input_pos.dtype} {input_pos.shape}"
            )
        if input_pos.size == 0:
            # the empty state, `ShardInferenceState()`: nothing processed yet
            start, length = 0, 0
            if int(curr_pos) != 0:
                raise InvalidStateError(
                    f"inference state 'input_pos' is empty (no chunk yet), so 'curr_pos' must be 0, got {int(curr_pos)}"
                )
        else:
            start, length = int(input_pos[0]), int(input_pos.size)
            if start < 0 or not np.array_equal(input_pos, np.arange(start, start + length)):
                raise InvalidStateError(
                    f"inference state 'input_pos' must count up by one from a position >= 0, "
                    f"got {length} positions starting at {start}"
                )
            if int(curr_pos) != start + length:
                raise InvalidStateError(
                    f"inference state 'curr_pos' is {int(curr_pos)}, but 'input_pos' ends at {start + length - 1}"
                )
        if tokens.shape[1] != start + length:
            raise InvalidStateError(
                f"inference state 'tokens' holds {tokens.shape[1]} tokens, but 'curr_pos' is {start + length}"
            )
        expected = causal_mask(start, length)
        if mask.dtype != np.bool_ or mask.shape != expected.shape or not np.array_equal(mask, expected):
            raise InvalidStateError(
                f"inference state 'mask' must be the causal bool mask of shape {expected.shape}, "
                f"got {mask.dtype} {mask.shape}"
            )
        return cls(
            tokens=tokens.astype(np.int64),
            input_pos=input_pos.astype(np.int64),
            mask=mask.copy(),
            curr_pos=start + length,
        )
