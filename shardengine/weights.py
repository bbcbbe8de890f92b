"""Loading one shard's weights from safetensors files, by HF Llama tensor names.

Only the tensors the shard needs are read. Everything is validated and read first (every file
opens, every tensor is present with a floating point dtype and the right shape, and reads); only
then is anything copied into the model, so a failed load leaves the model's weights as they were.
The price: while a shard loads, its tensors are held twice in memory for a moment (as read, on
the CPU, and in the model).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from shardengine.config import ModelConfig
from shardengine.errors import (
    CorruptWeightsError,
    MissingTensorError,
    ShardLoadError,
    TensorDtypeError,
    TensorShapeError,
    WeightsNotFoundError,
    classify_oom,
)
from shardengine.model import ShardedGeneralModel
from shardengine.shard import Shard

__all__ = ["load_shard_weights", "weight_files", "SINGLE_FILE", "INDEX_FILE", "FLOAT_DTYPES"]

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
# safetensors dtype names the loader accepts (converted to the model's dtype).
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


def weight_files(path: str | Path, names: list[str]) -> dict[str, Path]:
    """Which file holds each tensor in `names`.

    `path` is a safetensors file, or a model directory with `model.safetensors.index.json`
    (a sharded checkpoint) or `model.safetensors`.
    """
    path = Path(path)
    if not path.is_dir():
        return {name: path for name in names}
    index = path / INDEX_FILE
    if not index.is_file():
        return {name: path / SINGLE_FILE for name in names}
    try:
        data = json.loads(index.read_bytes())
    except Exception as exc:
        if classify_oom(exc) is not None:  # out of memory says nothing about the file: unchanged
            raise
        raise CorruptWeightsError(f"{index}: not valid JSON: {exc}") from exc
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict):
        raise CorruptWeightsError(f"{index}: has no 'weight_map' object")
    files: dict[str, Path] = {}
    for name in names:
        if name not in weight_map:
            raise MissingTensorError(f"{index}: tensor {name!r} is not in the weight_map")
        if not isinstance(weight_map[name], str):
            raise CorruptWeightsError(f"{index}: the weight_map entry of {name!r} is not a file name")
        files[name] = path / weight_map[name]
    return files


def _open(file: Path, stack: ExitStack) -> Any:
    if not file.is_file():
        raise WeightsNotFoundError(f"{file}: file not found")
    try:
        handle = safe_open(str(file), framework="pt", device="cpu")
    except Exception as exc:
        if classify_oom(exc) is not None:  # out of memory says nothing about the file: unchanged
            raise
        raise CorruptWeightsError(f"{file}: not a valid safetensors file: {exc}") from exc
    return stack.enter_context(handle)


def load_shard_weights(model: ShardedGeneralModel, path: str | Path, shard: Shard, config: ModelConfig) -> None:
    """Copy the shard's tensors from the safetensors file(s) at `path` into `model`.

    Raises (all `ShardLoadError`): `ShardLoadError` when `model` was built for another shard or
    config, `WeightsNotFoundError` for a missing file, `CorruptWeightsError` for a truncated or
    corrupt file or index or a tensor that cannot be read, `MissingTensorError`,
    `TensorDtypeError` and `TensorShapeError` naming the tensor and the file.
    """
    if model.shard != shard:
        raise ShardLoadError(f"the model was built for {model.shard}, not for the shard given, {shard}")
    if model.config != config:
        raise ShardLoadError(f"the model of {shard.model_id!r} was built for another config than the one given")
    wanted = model.hf_parameters()
    files = weight_files(path, [name for name, _ in wanted])
    with ExitStack() as stack:
        handles: dict[Path, Any] = {}
        keys: dict[Path, set[str]] = {}
        for file in dict.fromkeys(files.values()):
            handles[file] = _open(file, stack)
            keys[file] = set(handles[file].keys())
        for name, param in wanted:
            file = files[name]
            if name not in keys[file]:
                raise MissingTensorError(f"{file}: tensor {name!r} not found")
            view = handles[file].get_slice(name)
            dtype, shape = view.get_dtype(), list(view.get_shape())
            if dtype not in FLOAT_DTYPES:
                raise TensorDtypeError(
                    f"{file}: tensor {name!r} has dtype {dtype}, expected one of {', '.join(FLOAT_DTYPES)}"
                )
            if shape != list(param.shape):
                raise TensorShapeError(f"{file}: tensor {name!r} has shape {shape}, expected {list(param.shape)}")
        tensors = [_read(handles[files[name]], name, files[name]) for name, _ in wanted]
    with torch.no_grad():
        for (_, param), tensor in zip(wanted, tensors):
            param.copy_(tensor)


def _read(handle: Any, name: str, file: Path) -> torch.Tensor:
    """One tensor's data: a read that fails (the file changed or the disk failed since it was
    opened) raises `CorruptWeightsError` naming the tensor and the file."""
    try:
        return handle.get_tensor(name)
    except Exception as exc:
        if classify_oom(exc) is not None:  # out of memory says nothing about the file: unchanged
            raise
        raise CorruptWeightsError(f"{file}: cannot read tensor {name!r}: {exc}") from exc
