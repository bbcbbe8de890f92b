"""Choosing the next token from logits: greedy at temperature 0, else top-k sampling."""

from __future__ import annotations

import math

import numpy as np
import torch

from shardengine.errors import InvalidInputError

__all__ = ["sample_logits", "sample"]


def sample_logits(
    logits: torch.Tensor, temp: float = 0.0, top_k: int = 0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Next token ids (B, 1) int64 from logits (B, V).

    `temp == 0` takes the argmax. Otherwise the logits are divided by `temp` and, when
    `0 < top_k < V`, all but the `top_k` largest are dropped before sampling.
    """
    if temp == 0:
        return logits.argmax(dim=-1, keepdim=True)
    # Subtracting the max first keeps the largest scaled logit at 0, so even a tiny temperature
    # gives -inf (probability 0) elsewhere rather than inf - inf = NaN.
    logits = logits.float()
    scaled = (logits - logits.max(dim=-1, keepdim=True).values) / temp
    if 0 < top_k < scaled.shape[-1]:
        kth = torch.topk(scaled, top_k, dim=-1).values[..., -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


def sample(x: np.ndarray, temp: float = 0.0, top_k: int = 0, generator: torch.Generator | None = None) -> np.ndarray:
    """Sample the next token from the last position of logits (B, T, V) or (B, V): ids (B, 1) int64.

    Raises `InvalidInputError` for logits that are not a finite floating point array of rank 2
    or 3, a temperature that is not a finite number >= 0, or a `top_k` that is not an int >= 0.
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating) or x.ndim not in (2, 3) or x.size == 0:
        raise InvalidInputError(
            "logits must be a non-empty floating point numpy array of shape (B, V) or (B, T, V), got "
            + (f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__)
        )
    with np.errstate(over="ignore"):  # an overflow becomes inf, which the next check rejects
        last = np.ascontiguousarray(x[:, -1, :] if x.ndim == 3 else x, dtype=np.float32)
    if not np.isfinite(last).all():
        raise InvalidInputError("logits hold NaN or Inf values (as float32)")
    if isinstance(temp, bool) or not isinstance(temp, (int, float)) or not math.isfinite(temp) or temp < 0:
        raise InvalidInputError(f"temp must be a finite number >= 0, got {temp!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise InvalidInputError(f"top_k must be an int >= 0, got {top_k!r}")
    if temp == 0:  # greedy: numpy's argmax (the first of equal maxima, as torch's) without a tensor
        return np.argmax(last, axis=-1, keepdims=True).astype(np.int64)
    logits = torch.from_numpy(last)
    return sample_logits(logits, float(temp), top_k, generator).numpy().astype(np.int64)
