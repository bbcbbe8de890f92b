"""Repairing a damaged model: what the curated suite (`tests/errors/test_load_faults.py`, each
real load fault raising its typed error and leaving the engine unloaded) does not show.

There, the engine loads another, good model after a failed load. Here, the same shard, under the
same model id, loads through `infer_tensor` once its files are repaired on disk: a failed load
leaves nothing cached that would stop the next attempt from reading the files again.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from shardengine.errors import CorruptWeightsError
from tests.support.engines import full_shard
from tests.support.models import tiny_model_dir


def test_the_same_shard_loads_once_its_files_are_repaired(tmp_path, run, make_engine):
    good = tiny_model_dir()
    model_dir = tmp_path / "model"
    shutil.copytree(good, model_dir)
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    engine = make_engine()
    shard = full_shard(model_dir)
    prompt = np.array([[1, 2]])
    with pytest.raises(CorruptWeightsError) as raised:
        run(engine.infer_tensor("r", shard, prompt))
    assert str(raised.value).startswith(f"{weights}: not a valid safetensors file: ")
    assert (engine.shard, engine.model_instance, engine.inference_state, engine.tokenizer) == (None,) * 4

    shutil.copy2(good / "model.safetensors", weights)
    out, state = run(engine.infer_tensor("r", shard, prompt))
    expected, _ = run(make_engine().infer_tensor("r", full_shard(good), prompt))
    np.testing.assert_array_equal(out, expected)
    assert engine.shard == shard
    assert state["curr_pos"] == 2
