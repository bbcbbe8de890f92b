"""The KV cache: step-by-step and chunked decoding equal a full recompute; sequences do not leak."""

from __future__ import annotations

import numpy as np
import pytest

from shardengine.errors import InvalidStateError
from tests.support.engines import full_shard
from tests.support.models import tiny_model_dir


@pytest.mark.parametrize("chunks", [[1] * 12, [5, 1, 1, 5], [3, 4, 5]])
def test_chunked_decoding_equals_full_recompute(chunks, run, make_engine):
    shard = full_shard(tiny_model_dir())
    full_engine, step_engine = make_engine(), make_engine()
    tokens = run(full_engine.encode(shard, "Stars are suns that are very far away, and"))[:, :12]
    assert tokens.shape == (1, 12)
    expected, _ = run(full_engine.infer_tensor("full", shard, tokens))
    pieces, state, start = [], None, 0
    for size in chunks:
        out, state = run(step_engine.infer_tensor("steps", shard, tokens[:, start:start + size], state))
        assert out.shape == (1, size, 320)
        assert state["curr_pos"] == start + size
        np.testing.assert_array_equal(state["input_pos"], np.arange(start, start + size))
        pieces.append(out)
        start += size
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), expected, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(state["tokens"], tokens)
    assert step_engine.model_instance.cache_len == 12


def test_new_sequence_resets_the_cache(run, make_engine):
    shard = full_shard(tiny_model_dir())
    engine = make_engine()
    first, _ = run(engine.infer_tensor("a", shard, np.array([[5, 6, 7]])))
    run(engine.infer_tensor("b", shard, np.array([[9, 9, 9, 9, 9]])))
    again, state = run(engine.infer_tensor("a", shard, np.array([[5, 6, 7]])))
    np.testing.assert_array_equal(first, again)
    assert (engine.model_instance.cache_owner, engine.model_instance.cache_len) == ("a", 3)
    assert state["curr_pos"] == 3


def test_a_new_sequence_invalidates_the_old_ones_continuation(run, make_engine):
    shard = full_shard(tiny_model_dir())
    engine = make_engine()
    _, state_a = run(engine.infer_tensor("a", shard, np.array([[5, 6, 7]])))
    run(engine.infer_tensor("b", shard, np.array([[1]])))
    with pytest.raises(InvalidStateError):
        run(engine.infer_tensor("a", shard, np.array([[8]]), state_a))
    assert engine.model_instance.cache_owner == "b"


def test_rotary_tables_grow_with_the_sequence_not_to_max_positions(run, make_engine, monkeypatch):
    """The rotary table is computed once for the positions a sequence has reached, doubling as it
    grows (never for all of max_position_embeddings up front), and a step only slices it."""
    import shardengine.model as model_module

    sizes = []
    real = model_module.rotary_cos_sin

    def spy(positions, *args):
        sizes.append(positions.shape[0])
        return real(positions, *args)

    monkeypatch.setattr(model_module, "rotary_cos_sin", spy)
    shard = full_shard(tiny_model_dir())
    engine = make_engine()
    full, _ = run(make_engine().infer_tensor("full", shard, np.arange(1, 9)[None]))
    assert sizes == [8]
    _, state = run(engine.infer_tensor("r", shard, np.array([[1, 2, 3]])))
    for token in range(4, 9):
        out, state = run(engine.infer_tensor("r", shard, np.array([[token]]), state))
    assert sizes == [8, 3, 6, 12]  # steps at positions 3 and 6 outgrew the table
    np.testing.assert_allclose(out[0, -1], full[0, -1], rtol=0, atol=1e-5)
    engine.model_instance.rotary(0, 128)
    assert sizes == [8, 3, 6, 12, 128]  # doubling stops at max_position_embeddings
