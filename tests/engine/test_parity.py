"""Parity with transformers' LlamaForCausalLM on the same config and weights (float32)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from shardengine.shard import Shard
from tests.support.models import tiny_model_dir

transformers = pytest.importorskip("transformers")

CONFIGS = {
    "gqa": dict(),
    "mha-tied": dict(kv_heads=4, tie=True, seed=1),
    "deeper": dict(layers=4, hidden=64, heads=8, kv_heads=2, intermediate=128, seed=2),
}


def hf_model(model_dir):
    from safetensors.torch import load_file

    config = transformers.LlamaConfig(**json.loads((model_dir / "config.json").read_text()))
    model = transformers.LlamaForCausalLM(config).eval()
    missing, unexpected = model.load_state_dict(load_file(str(model_dir / "model.safetensors")), strict=False)
    assert not unexpected
    assert missing in ([], ["lm_head.weight"])  # tied: lm_head is the embedding
    if config.tie_word_embeddings:
        model.tie_weights()
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    return model


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_logits_match_transformers(name, run, make_engine):
    params = CONFIGS[name]
    model_dir = tiny_model_dir(**params)
    layers = params.get("layers", 2)
    shard = Shard(str(model_dir), 0, layers - 1, layers)
    engine = make_engine()
    tokens = run(engine.encode(shard, "The river starts high in the hills, where the snow melts"))
    ours, _ = run(engine.infer_tensor("parity", shard, tokens))
    with torch.no_grad():
        theirs = hf_model(model_dir)(torch.from_numpy(tokens)).logits.numpy()
    assert ours.shape == theirs.shape == (1, tokens.shape[1], 320)
    assert np.abs(ours - theirs).max() <= 1e-4
    assert np.abs(ours).mean() > 0.1  # the logits are not trivially zero


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_greedy_generation_matches_transformers(name, run, make_engine):
    params = CONFIGS[name]
    model_dir = tiny_model_dir(**params)
    layers = params.get("layers", 2)
    shard = Shard(str(model_dir), 0, layers - 1, layers)
    engine = make_engine()
    prompt = run(engine.encode(shard, "Bread is made from four things"))
    out, state = run(engine.infer_tensor("gen", shard, prompt))
    generated = []
    for _ in range(20):
        token = run(engine.sample(out, temp=0.0))
        generated.append(int(token[0, 0]))
        out, state = run(engine.infer_tensor("gen", shard, token, state))
    with torch.no_grad():
        theirs = hf_model(model_dir).generate(
            torch.from_numpy(prompt), max_new_tokens=20, min_new_tokens=20, do_sample=False, pad_token_id=0
        )
    assert generated == theirs[0, prompt.shape[1]:].tolist()
    assert state["tokens"][0].tolist() == prompt[0].tolist() + generated
