"""Out of memory for real: a KV cache the machine cannot allocate, then recovery.

On CPU the allocation fails in torch's CPU allocator; on a CUDA machine (tests marked `cuda`) it
fails on the GPU, and after the recovery `torch.cuda.memory_allocated()` is back at its baseline.
"""

from __future__ import annotations

import gc
import json
import shutil
import weakref

import numpy as np
import pytest

from tests.support.engines import full_shard
from tests.support.models import tiny_model_dir
from tests.support.oom import HUGE_POSITIONS, real_cpu_oom_message


def _copy_with_huge_cache(tmp_path):
    model_dir = tmp_path / "huge"
    shutil.copytree(tiny_model_dir(), model_dir)
    set_positions(model_dir, HUGE_POSITIONS)
    return model_dir


def set_positions(model_dir, positions):
    config = json.loads((model_dir / "config.json").read_text())
    config["max_position_embeddings"] = positions
    (model_dir / "config.json").write_text(json.dumps(config))


def test_real_cpu_oom_then_recovery_generates_text(tmp_path, run, make_engine, caplog, monkeypatch):
    monkeypatch.setenv("SHARDENGINE_DEVICE", "cpu")
    model_dir = _copy_with_huge_cache(tmp_path)
    shard = full_shard(model_dir)
    engine = make_engine()
    prompt = run(engine.encode(shard, "The library was quiet"))
    model_ref = weakref.ref(engine.model_instance)
    with caplog.at_level("DEBUG", logger="shardengine"):
        assert run(engine.infer_tensor("req-1", shard, prompt)) == (None, None)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in errors] == [f"Out of memory on CPU: {real_cpu_oom_message()} (request req-1)"]
    assert errors[0].request_id == "req-1"
    assert engine.out_of_memory_count == 1
    assert engine.model_instance is None and engine.shard is None and engine.tokenizer is None
    gc.collect()
    assert model_ref() is None

    set_positions(model_dir, 128)
    out, state = run(engine.infer_tensor("req-2", shard, prompt))
    text = []
    for _ in range(5):
        token = run(engine.sample(out))
        text.append(int(token[0, 0]))
        out, state = run(engine.infer_tensor("req-2", shard, token, state))
    assert isinstance(run(engine.decode(shard, np.array(text))), str)
    assert engine.out_of_memory_count == 1
    assert engine.shard == shard


@pytest.mark.cuda
def test_real_cuda_oom_then_recovery_frees_gpu_memory(tmp_path, run, make_engine, monkeypatch):
    import torch

    monkeypatch.setenv("SHARDENGINE_DEVICE", "cuda")
    # one step on the GPU first: the process-wide caches it fills (the RoPE frequencies on the
    # device) are warm-up, not memory the recovery must give back
    warm = make_engine()
    run(warm.infer_tensor("warm-up", full_shard(tiny_model_dir()), np.array([[1, 2, 3]])))
    warm.shutdown()
    gc.collect()
    torch.cuda.synchronize()
    baseline = torch.cuda.memory_allocated()
    model_dir = _copy_with_huge_cache(tmp_path)
    shard = full_shard(model_dir)
    engine = make_engine()
    assert engine.device.type == "cuda"
    prompt = np.array([[1, 2, 3]])
    run(engine.ensure_shard(shard))
    assert torch.cuda.memory_allocated() > baseline  # the weights are on the GPU
    assert run(engine.infer_tensor("gpu", shard, prompt)) == (None, None)
    assert engine.out_of_memory_count == 1
    assert engine.model_instance is None
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() == baseline

    set_positions(model_dir, 128)
    out, state = run(engine.infer_tensor("gpu", shard, prompt))
    assert out.shape == (1, 3, 320)
    assert np.isfinite(out).all()
    engine.clear_model()
    gc.collect()
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() == baseline


@pytest.mark.cuda
def test_cuda_results_match_cpu(run, make_engine, monkeypatch):
    shard = full_shard(tiny_model_dir())
    prompt = np.array([[5, 6, 7, 8]])
    monkeypatch.setenv("SHARDENGINE_DEVICE", "cpu")
    cpu, _ = run(make_engine().infer_tensor("r", shard, prompt))
    monkeypatch.setenv("SHARDENGINE_DEVICE", "cuda")
    gpu, _ = run(make_engine().infer_tensor("r", shard, prompt))
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1e-3)
