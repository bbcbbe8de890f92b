"""The engine's errors: one base class, small typed subclasses, and `classify_oom`.

Every typed error also subclasses the builtin it refines, so callers that catch
`ValueError` or `FileNotFoundError` keep working.
"""

from __future__ import annotations

import torch

__all__ = [
    "ShardEngineError",
    "InvalidShardError",
    "ModelNotFoundError",
    "InvalidConfigError",
    "ConfigNotFoundError",
    "TokenizerLoadError",
    "TokenizerNotFoundError",
    "ShardLoadError",
    "WeightsNotFoundError",
    "CorruptWeightsError",
    "MissingTensorError",
    "TensorShapeError",
    "TensorDtypeError",
    "InvalidPromptError",
    "InvalidTokensError",
    "InvalidInputError",
    "InvalidStateError",
    "TokenizerError",
    "classify_oom",
    "CPU_OOM_MARKER",
    "MPS_OOM_MARKER",
]

CPU_OOM_MARKER = "DefaultCPUAllocator: can't allocate memory"
MPS_OOM_MARKER = "MPS backend out of memory"


class ShardEngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class InvalidShardError(ShardEngineError, ValueError):
    """A shard spec is malformed or does not fit the model."""


class ModelNotFoundError(ShardEngineError, FileNotFoundError):
    """The downloader cannot find the model's directory."""


class InvalidConfigError(ShardEngineError, ValueError):
    """`config.json` is unreadable, or a field is missing or bad."""


class ConfigNotFoundError(InvalidConfigError, FileNotFoundError):
    """The model directory has no `config.json`."""


class TokenizerLoadError(ShardEngineError, ValueError):
    """`tokenizer.json` cannot be loaded."""


class TokenizerNotFoundError(TokenizerLoadError, FileNotFoundError):
    """The model directory has no `tokenizer.json`."""


class ShardLoadError(ShardEngineError, ValueError):
    """The shard's weights cannot be loaded."""


class WeightsNotFoundError(ShardLoadError, FileNotFoundError):
    """A safetensors file the shard needs does not exist."""


class CorruptWeightsError(ShardLoadError):
    """A safetensors file (or its index) is truncated or corrupt."""


class MissingTensorError(ShardLoadError):
    """A tensor the shard needs is not in the weights."""


class TensorShapeError(ShardLoadError):
    """A tensor in the weights has the wrong shape."""


class TensorDtypeError(ShardLoadError):
    """A tensor in the weights has a dtype that is not a floating point type."""


class InvalidPromptError(ShardEngineError, ValueError):
    """`encode` was given something other than a non-empty str."""


class InvalidTokensError(ShardEngineError, ValueError):
    """`decode` was given tokens that are not valid ids of the tokenizer."""


class InvalidInputError(ShardEngineError, ValueError):
    """`infer_tensor` (or `sample`) was given input the shard cannot run."""


class InvalidStateError(ShardEngineError, ValueError):
    """An inference state is malformed or does not continue the engine's KV cache."""


class TokenizerError(ShardEngineError, ValueError):
    """The tokenizer failed while encoding or decoding."""


def classify_oom(exc: BaseException) -> str | None:
    """Name the backend that ran out of memory, or None if `exc` is not an out-of-memory error.

    MPS is checked first: it may raise `torch.OutOfMemoryError` too. `torch.OutOfMemoryError`
    (the same class as `torch.cuda.OutOfMemoryError`) is otherwise CUDA. A CPU allocation failure
    is a plain RuntimeError with the allocator's message, or a `MemoryError`.
    """
    if isinstance(exc, RuntimeError) and MPS_OOM_MARKER in str(exc):
        return "MPS"
    if isinstance(exc, torch.OutOfMemoryError):
        return "CUDA"
    if isinstance(exc, MemoryError):
        return "CPU"
    if isinstance(exc, RuntimeError) and CPU_OOM_MARKER in str(exc):
        return "CPU"
    return None
