"""The four real load faults of the engine issue, end to end: each raises its typed error, leaves
the engine unloaded, and the engine loads again once the file is repaired."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from shardengine.errors import (
    CorruptWeightsError,
    InvalidConfigError,
    ShardLoadError,
    TensorShapeError,
    TokenizerLoadError,
)
from tests.support.engines import full_shard
from tests.support.models import tiny_model_dir


def truncate_weights(model_dir):
    path = model_dir / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])


def wrong_shape(model_dir):
    path = model_dir / "model.safetensors"
    tensors = load_file(str(path))
    tensors["model.layers.0.self_attn.q_proj.weight"] = tensors["model.layers.0.self_attn.q_proj.weight"][:, :16].contiguous()
    save_file(tensors, str(path))


def drop_config_field(model_dir):
    path = model_dir / "config.json"
    config = json.loads(path.read_text())
    del config["num_attention_heads"]
    path.write_text(json.dumps(config))


def break_tokenizer(model_dir):
    (model_dir / "tokenizer.json").write_text('{"model": "not a model"}')


@pytest.mark.parametrize(
    "damage, error, fragment",
    [
        (truncate_weights, CorruptWeightsError, "not a valid safetensors file"),
        (wrong_shape, TensorShapeError, "'model.layers.0.self_attn.q_proj.weight' has shape [32, 16], expected [32, 32]"),
        (drop_config_field, InvalidConfigError, "missing field(s): num_attention_heads"),
        (break_tokenizer, TokenizerLoadError, "invalid tokenizer.json"),
    ],
    ids=["truncated-safetensors", "wrong-shape", "missing-config-field", "invalid-tokenizer"],
)
def test_fault_leaves_engine_unloaded_and_repair_reloads(damage, error, fragment, tmp_path, run, make_engine):
    good = tiny_model_dir()
    model_dir = tmp_path / "model"
    shutil.copytree(good, model_dir)
    damage(model_dir)
    engine = make_engine()
    run(engine.ensure_shard(full_shard(good)))
    with pytest.raises(error) as raised:
        run(engine.infer_tensor("r", full_shard(model_dir), np.array([[1, 2]])))
    assert fragment in str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert (engine.shard, engine.model_instance, engine.inference_state, engine.tokenizer) == (None, None, None, None)
    if error in (CorruptWeightsError, TensorShapeError):
        assert isinstance(raised.value, ShardLoadError)
    shutil.rmtree(model_dir)
    shutil.copytree(good, model_dir)
    out, _ = run(engine.infer_tensor("r", full_shard(model_dir), np.array([[1, 2]])))
    assert out.shape == (1, 2, 320)
