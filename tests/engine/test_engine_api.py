"""The engine's public API on the happy path: loading, ordering, checkpoints, devices, the tiny builder."""

from __future__ import annotations

import asyncio
import gc
import json
import pickle
import shutil
import threading
import weakref
from unittest import mock

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import shardengine.engine as engine_module
from shardengine.downloader import LocalShardDownloader
from shardengine.engine import TorchDynamicShardInferenceEngine, default_device
from shardengine.model import ShardedGeneralModel
from shardengine.shard import Shard
from shardengine.state import ShardInferenceState
from shardengine.tiny import PRESETS, count_parameters, main as tiny_main, model_config
from tests.support.engines import Hold, full_shard
from tests.support.models import tiny_model_dir


def test_constructor_does_no_io():
    downloader = mock.Mock(spec=LocalShardDownloader)
    engine = TorchDynamicShardInferenceEngine(downloader)
    try:
        assert downloader.method_calls == []
        assert (engine.shard, engine.model_instance, engine.inference_state, engine.tokenizer) == (None,) * 4
        assert engine.out_of_memory_count == 0
    finally:
        engine.shutdown()


def test_ensure_shard_returns_at_once_for_the_loaded_shard(run, make_engine):
    engine = make_engine()
    shard = full_shard(tiny_model_dir())
    run(engine.ensure_shard(shard))
    model = engine.model_instance
    with mock.patch("shardengine.engine.load_model_config") as load_config:
        run(engine.ensure_shard(Shard(shard.model_id, 0, 1, 2)))  # equal by value
    load_config.assert_not_called()
    assert engine.model_instance is model


def test_calls_run_in_order_on_one_worker_thread(run, make_engine):
    """Five calls at once: the first is held inside the model on the worker thread (no sleeps:
    `Hold` blocks it until released) while the event loop keeps running and the other calls wait
    for the lock; then all run, one at a time, in order, on one thread that is not the loop's."""
    engine = make_engine()
    shard = full_shard(tiny_model_dir())
    run(engine.ensure_shard(shard))
    active, overlaps, threads = [0], [], set()

    async def many():
        hold = Hold(only="r0")
        held = hold.generate()

        def generate(model, *args):
            active[0] += 1
            overlaps.append(active[0])
            threads.add(threading.get_ident())
            try:
                return held(model, *args)
            finally:
                active[0] -= 1

        try:
            with mock.patch.object(ShardedGeneralModel, "generate", generate):
                calls = [engine.infer_tensor(f"r{i}", shard, np.array([[i + 1]])) for i in range(5)]
                tasks = [asyncio.create_task(call) for call in calls]
                await hold.started.wait()
                # the loop still runs callbacks while the model works in the thread
                ticked = asyncio.Event()
                asyncio.get_running_loop().call_soon(ticked.set)
                await asyncio.wait_for(ticked.wait(), timeout=5)
                assert hold.started.is_set() and not hold.finished.is_set()
                assert hold.calls == ["r0"]  # the other calls wait for the lock
                assert engine._lock.locked()
                hold.release.set()
                return await asyncio.gather(*tasks), hold.calls
        finally:
            hold.release.set()

    results, order = run(many())
    assert order == [f"r{i}" for i in range(5)]
    assert overlaps == [1] * 5
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert [state["tokens"].tolist() for _, state in results] == [[[i + 1]] for i in range(5)]


def test_load_checkpoint_replaces_weights_and_drops_the_cache(tmp_path, run, make_engine):
    engine = make_engine()
    shard = full_shard(tiny_model_dir())
    run(engine.infer_tensor("r", shard, np.array([[1, 2]])))
    assert engine.model_instance.kv_cache is not None
    other = tiny_model_dir(seed=7)
    run(engine.load_checkpoint(shard, other / "model.safetensors"))
    model = engine.model_instance
    assert (model.kv_cache, model.cache_owner, model.cache_len, engine.inference_state) == (None, None, 0, None)
    reference = load_file(str(other / "model.safetensors"))
    assert torch.equal(model.embed_tokens.weight, reference["model.embed_tokens.weight"])
    fresh = make_engine()
    expected, _ = run(fresh.infer_tensor("r", full_shard(other), np.array([[1, 2]])))
    out, _ = run(engine.infer_tensor("r", shard, np.array([[1, 2]])))
    np.testing.assert_array_equal(out, expected)


def test_infer_prompt_encodes_then_runs(run, make_engine):
    engine = make_engine()
    shard = full_shard(tiny_model_dir())
    out, state = run(engine.infer_prompt("p", shard, "The garden needs water"))
    tokens = run(engine.encode(shard, "The garden needs water"))
    np.testing.assert_array_equal(state["tokens"], tokens)
    assert out.shape == (1, tokens.shape[1], 320)


def test_state_dict_crosses_a_process_boundary(run, make_engine):
    engine = make_engine()
    shard = full_shard(tiny_model_dir())
    _, state = run(engine.infer_tensor("r", shard, np.array([[1, 2, 3]])))
    copied = pickle.loads(pickle.dumps(state))
    assert all(isinstance(v, np.ndarray) for k, v in copied.items() if k != "curr_pos")
    out, _ = run(engine.infer_tensor("r", shard, np.array([[4]]), copied))
    assert out.shape == (1, 1, 320)
    state_obj = ShardInferenceState.from_dict(copied)
    assert state_obj.curr_pos == 3


def test_sampling_with_temperature_and_top_k(run, make_engine):
    engine = make_engine()
    logits = np.log(np.array([[[0.7, 0.2, 0.1, 1e-9]]], dtype=np.float32))
    torch.manual_seed(0)
    draws = [int(run(engine.sample(logits, temp=1.0, top_k=2))[0, 0]) for _ in range(200)]
    assert set(draws) == {0, 1}
    assert 100 < draws.count(0) < 180
    assert run(engine.sample(logits)).tolist() == [[0]]
    assert run(engine.sample(logits)).dtype == np.int64


def test_clear_model_leaves_no_reference_to_the_models_tensors(run, make_engine):
    engine = make_engine()
    shard = full_shard(tiny_model_dir())
    run(engine.infer_tensor("r", shard, np.array([[1, 2]])))
    refs = [weakref.ref(engine.model_instance), weakref.ref(engine.model_instance.kv_cache[0][0])]
    refs += [weakref.ref(p) for _, p in engine.model_instance.hf_parameters()[:3]]
    engine.clear_model()
    engine.clear_model()
    gc.collect()
    assert [r() for r in refs] == [None] * len(refs)


def test_default_device(monkeypatch):
    monkeypatch.setenv("SHARDENGINE_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")
    monkeypatch.setenv("SHARDENGINE_DEVICE", "meta")
    assert default_device() == torch.device("meta")
    monkeypatch.delenv("SHARDENGINE_DEVICE")
    with mock.patch.object(torch.cuda, "is_available", return_value=True):
        assert default_device() == torch.device("cuda")
    with mock.patch.object(torch.cuda, "is_available", return_value=False), mock.patch.object(
        torch.backends.mps, "is_available", return_value=True
    ):
        assert default_device() == torch.device("mps")
    with mock.patch.object(torch.cuda, "is_available", return_value=False), mock.patch.object(
        torch.backends.mps, "is_available", return_value=False
    ):
        assert default_device() == torch.device("cpu")


def test_hub_cache_layout_end_to_end(tmp_path, run):
    snapshot = tmp_path / "models--org--tiny" / "snapshots" / "0123abc"
    shutil.copytree(tiny_model_dir(), snapshot)
    (tmp_path / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "models--org--tiny" / "refs" / "main").write_text("0123abc")
    engine = TorchDynamicShardInferenceEngine(LocalShardDownloader(tmp_path))
    try:
        out, _ = run(engine.infer_prompt("r", Shard("org/tiny", 0, 1, 2), "hello"))
        assert out.shape[2] == 320
    finally:
        engine.shutdown()


def test_module_namespace_exposes_the_patch_points():
    for name in ("torch", "Shard", "ShardInferenceState", "ShardedGeneralModel", "ShardDownloader",
                 "load_model_config", "_resolve_tokenizer", "load_shard_weights", "classify_oom"):
        assert hasattr(engine_module, name), name


def test_tiny_cli_writes_a_loadable_sharded_model(tmp_path, run, capsys):
    target = tmp_path / "cli-model"
    assert tiny_main([str(target), "--layers", "3", "--files", "3", "--tie", "--seed", "4"]) == 0
    assert "parameters" in capsys.readouterr().out
    config = json.loads((target / "config.json").read_text())
    assert (config["num_hidden_layers"], config["tie_word_embeddings"]) == (3, True)
    assert len(list(target.glob("model-*-of-00003.safetensors"))) == 3
    engine = TorchDynamicShardInferenceEngine(LocalShardDownloader(tmp_path))
    try:
        out, _ = run(engine.infer_prompt("r", Shard(str(target), 0, 2, 3), "bread"))
        assert out.shape[2] == 320
    finally:
        engine.shutdown()


def test_50m_preset_has_about_50_million_parameters():
    preset = dict(PRESETS["50m"])
    config = model_config(**preset)
    assert 45_000_000 <= count_parameters(config) <= 55_000_000


@pytest.mark.slow
def test_50m_preset_builds_and_runs(tmp_path, run):
    target = tmp_path / "m50"
    assert tiny_main([str(target), "--preset", "50m"]) == 0
    tensors = load_file(str(target / "model.safetensors"))
    assert sum(t.numel() for t in tensors.values()) == count_parameters(json.loads((target / "config.json").read_text()))
    engine = TorchDynamicShardInferenceEngine(LocalShardDownloader(tmp_path))
    try:
        out, _ = run(engine.infer_prompt("r", Shard(str(target), 0, 11, 12), "The river"))
        assert out.shape[2] == 4096
    finally:
        engine.shutdown()
