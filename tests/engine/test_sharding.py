"""Sharding: a model split into consecutive shards, each run by its own engine, gives the full
model's logits, for every split point, also when decoding continues step by step."""

from __future__ import annotations

import numpy as np
import pytest

from shardengine.shard import Shard
from tests.support.models import tiny_model_dir

PARAMS = dict(layers=4, hidden=64, heads=8, kv_heads=2, intermediate=128, seed=2)
N = PARAMS["layers"]


def run_pipeline(run, engines, shards, request_id, tokens, state=None):
    x = tokens
    for engine, shard in zip(engines, shards):
        x, state = run(engine.infer_tensor(request_id, shard, x, state))
    return x, state


@pytest.mark.parametrize("k", range(1, N))
def test_two_shards_give_the_full_models_logits(k, run, make_engine):
    model_id = str(tiny_model_dir(**PARAMS))
    full = Shard(model_id, 0, N - 1, N)
    first, second = Shard(model_id, 0, k - 1, N), Shard(model_id, k, N - 1, N)
    whole, head, tail = make_engine(), make_engine(), make_engine()
    prompt = run(whole.encode(full, "Trains leave the station every ten minutes"))
    expected, expected_state = run(whole.infer_tensor("r", full, prompt))

    hidden, state = run(head.infer_tensor("r", first, prompt))
    assert hidden.shape == (1, prompt.shape[1], PARAMS["hidden"])
    logits, tail_state = run(tail.infer_tensor("r", second, hidden, state))
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-5)
    for key in ("tokens", "input_pos", "mask", "curr_pos"):
        np.testing.assert_array_equal(tail_state[key], expected_state[key])

    # keep decoding greedily through both shards: every step matches the whole model
    engines, shards = (head, tail), (first, second)
    for _ in range(5):
        token = run(whole.sample(expected))
        expected, expected_state = run(whole.infer_tensor("r", full, token, expected_state))
        logits, state = run_pipeline(run, engines, shards, "r", token, tail_state)
        tail_state = state
        np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-5)
        assert state["curr_pos"] == expected_state["curr_pos"]
    assert head.model_instance.cache_len == tail.model_instance.cache_len == expected_state["curr_pos"]


def test_one_engine_per_layer(run, make_engine):
    model_id = str(tiny_model_dir(**PARAMS))
    shards = [Shard(model_id, i, i, N) for i in range(N)]
    engines = [make_engine() for _ in shards]
    whole = make_engine()
    full = Shard(model_id, 0, N - 1, N)
    prompt = run(whole.encode(full, "Every good test has three parts"))
    expected, _ = run(whole.infer_tensor("r", full, prompt))
    logits, state = run_pipeline(run, engines, shards, "r", prompt)
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-5)
    # each engine holds only its own layer's weights
    for engine, shard in zip(engines, shards):
        model = engine.model_instance
        assert len(model.layers) == 1
        assert (model.embed_tokens is not None) == shard.is_first_layer()
        assert (model.lm_head is not None) == shard.is_last_layer()
        names = [name for name, _ in model.hf_parameters()]
        assert all(f"layers.{shard.start_layer}." in n for n in names if ".layers." in n)
