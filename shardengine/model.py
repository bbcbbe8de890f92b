"""`ShardedGeneralModel`: a Llama-style decoder that holds only one shard's layers.

RMSNorm, rotary position embeddings (the HF `rotate_half` layout), grouped-query attention,
a SwiGLU MLP and a preallocated KV cache. The embedding lives on the first shard, the final norm
and the LM head on the last. The KV cache (one key and one value tensor per layer, each of size
`max_position_embeddings`) is allocated on the first `generate` call, so an impossible
`max_position_embeddings` fails there, inside `generate`, with the backend's out-of-memory error.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from shardengine.config import ModelConfig
from shardengine.errors import InvalidShardError
from shardengine.shard import Shard
from shardengine.state import causal_mask

__all__ = ["ShardedGeneralModel", "RMSNorm", "Attention", "MLP", "DecoderLayer", "rotary_cos_sin"]


def _weight(*shape: int, device: torch.device, dtype: torch.dtype) -> nn.Parameter:
    # Uninitialised on purpose: every weight is overwritten by load_shard_weights.
    return nn.Parameter(torch.empty(*shape, device=device, dtype=dtype), requires_grad=False)


class Linear(nn.Module):
    """A bias-free linear layer whose `weight` is (out_features, in_features), as in HF checkpoints.

    With `rows`, the weight is a view of those rows of a fused weight (see `_fused_linears`)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        device: torch.device,
        dtype: torch.dtype,
        rows: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if rows is None:
            self.weight = _weight(out_features, in_features, device=device, dtype=dtype)
        else:
            self.weight = nn.Parameter(rows, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)


def _fused_linears(
    in_features: int, out_sizes: list[int], device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, list[Linear]]:
    """One (sum(out_sizes), in_features) weight, and a `Linear` per part whose weight is a view of
    its rows: each part keeps its HF name (and loads by it), while a step runs one matmul for all
    of them. The fused tensor is a plain attribute, not a parameter, so nothing is counted twice."""
    fused = torch.empty(sum(out_sizes), in_features, device=device, dtype=dtype)
    parts = fused.split(out_sizes)
    return fused, [Linear(in_features, size, device, dtype, rows=part) for size, part in zip(out_sizes, parts)]


class Embedding(nn.Module):
    def __init__(self, num: int, dim: int, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = _weight(num, dim, device=device, dtype=dtype)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.weight)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = _weight(dim, device=device, dtype=dtype)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:
            return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)  # one fused op
        # computed in float32 and scaled in the input's dtype, as HF Llama does
        return self.weight * F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps).to(x.dtype)


@functools.lru_cache(maxsize=16)
def _inverse_frequencies(head_dim: int, theta: float, device: torch.device) -> torch.Tensor:
    """The rotary frequencies (head_dim / 2,) float32: the same for every step, so computed once."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim
    return 1.0 / (theta**exponents)


def rotary_cos_sin(
    positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles of `positions` only: each (T, head_dim)."""
    inv_freq = _inverse_frequencies(head_dim, float(theta), positions.device)
    freqs = positions.float()[:, None] * inv_freq[None, :]
    angles = torch.cat((freqs, freqs), dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + _rotate_half(x) * sin


class Attention(nn.Module):
    """Grouped-query attention that writes the chunk's keys and values into the KV cache.

    The query, key and value projections share one fused weight (`qkv_weight`), and the rotary
    embedding turns the query and key heads together."""

    def __init__(self, config: ModelConfig, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        hidden = config.hidden_size
        sizes = [self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim, self.num_kv_heads * self.head_dim]
        self.qkv_weight, (self.q_proj, self.k_proj, self.v_proj) = _fused_linears(hidden, sizes, device, dtype)
        self.o_proj = Linear(self.num_heads * self.head_dim, hidden, device, dtype)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        cache: tuple[torch.Tensor, torch.Tensor],
        start: int,
    ) -> torch.Tensor:
        batch, length, _ = x.shape
        heads, kv_heads = self.num_heads, self.num_kv_heads
        qkv = F.linear(x, self.qkv_weight).view(batch, length, heads + 2 * kv_heads, self.head_dim).transpose(1, 2)
        q, k = _apply_rotary(qkv[:, : heads + kv_heads], cos, sin).split([heads, kv_heads], dim=1)
        v = qkv[:, heads + kv_heads :]
        k_cache, v_cache = cache
        end = start + length
        k_cache[:, :, start:end] = k
        v_cache[:, :, start:end] = v
        # Only the used prefix of the cache; grouped-query heads are shared by SDPA, not copied.
        keys, values = k_cache[:, :, :end], v_cache[:, :, :end]
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, enable_gqa=kv_heads != heads)
        return F.linear(out.transpose(1, 2).reshape(batch, length, heads * self.head_dim), self.o_proj.weight)


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x)); the gate and up projections share one fused weight."""

    def __init__(self, config: ModelConfig, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__()
        sizes = [config.intermediate_size, config.intermediate_size]
        self.gate_up_weight, (self.gate_proj, self.up_proj) = _fused_linears(config.hidden_size, sizes, device, dtype)
        self.down_proj = Linear(config.intermediate_size, config.hidden_size, device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = F.linear(x, self.gate_up_weight).chunk(2, dim=-1)
        return F.linear(F.silu(gate) * up, self.down_proj.weight)


class DecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps, device, dtype)
        self.self_attn = Attention(config, device, dtype)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps, device, dtype)
        self.mlp = MLP(config, device, dtype)

    def forward(self, h, cos, sin, mask, cache, start):  # type: ignore[no-untyped-def]
        # `forward` is called directly (here and in `generate`): these modules have no hooks, and
        # `nn.Module.__call__`'s hook handling costs more per step than a small model's ops.
        h = h + self.self_attn.forward(self.input_layernorm.forward(h), cos, sin, mask, cache, start)
        return h + self.mlp.forward(self.post_attention_layernorm.forward(h))


class ShardedGeneralModel(nn.Module):
    """The layers `shard.start_layer..shard.end_layer` of a Llama-style model.

    `generate(x, input_pos, request_id)` runs one forward step of the shard over the chunk `x`
    at positions `input_pos`: token ids (1, T) on the first shard, hidden states (1, T, H) on the
    others. It returns logits (1, T, vocab) from the last shard and hidden states otherwise.
    The KV cache belongs to one sequence at a time (`cache_owner`, the request id) and holds its
    first `cache_len` positions. The model is built on its device and stays there: fused weights
    (`Attention.qkv_weight`, `MLP.gate_up_weight`) are views shared with the parameters, which
    `.to()` would separate.
    """

    def __init__(
        self,
        config: ModelConfig,
        shard: Shard,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if shard.n_layers != config.num_hidden_layers:
            raise InvalidShardError(
                f"shard of {shard.model_id!r} has n_layers={shard.n_layers}, "
                f"but the model has {config.num_hidden_layers} layers"
            )
        device = torch.device(device)
        self.config = config
        self.shard = shard
        self.device = device
        self.dtype = dtype
        self.embed_tokens = (
            Embedding(config.vocab_size, config.hidden_size, device, dtype) if shard.is_first_layer() else None
        )
        self.layers = nn.ModuleList(DecoderLayer(config, device, dtype) for _ in range(shard.get_layer_count()))
        if shard.is_last_layer():
            self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps, device, dtype)
            self.lm_head = Linear(config.hidden_size, config.vocab_size, device, dtype)
        else:
            self.norm = None
            self.lm_head = None
        self.kv_cache: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self.cache_owner: str | None = None
        self.cache_len = 0
        # cos and sin of the rotary angles of positions 0..n-1, grown (doubling) as sequences get
        # longer, never to max_position_embeddings up front; a step slices its positions out
        self._rotary_table: tuple[torch.Tensor, torch.Tensor] | None = None

    def hf_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """(HF Llama tensor name, parameter) for every weight of this shard, in load order."""
        named: list[tuple[str, nn.Parameter]] = []
        if self.embed_tokens is not None:
            named.append(("model.embed_tokens.weight", self.embed_tokens.weight))
        for index, layer in enumerate(self.layers):
            prefix = f"model.layers.{self.shard.start_layer + index}."
            named += [
                (prefix + "input_layernorm.weight", layer.input_layernorm.weight),
                (prefix + "self_attn.q_proj.weight", layer.self_attn.q_proj.weight),
                (prefix + "self_attn.k_proj.weight", layer.self_attn.k_proj.weight),
                (prefix + "self_attn.v_proj.weight", layer.self_attn.v_proj.weight),
                (prefix + "self_attn.o_proj.weight", layer.self_attn.o_proj.weight),
                (prefix + "post_attention_layernorm.weight", layer.post_attention_layernorm.weight),
                (prefix + "mlp.gate_proj.weight", layer.mlp.gate_proj.weight),
                (prefix + "mlp.up_proj.weight", layer.mlp.up_proj.weight),
                (prefix + "mlp.down_proj.weight", layer.mlp.down_proj.weight),
            ]
        if self.norm is not None and self.lm_head is not None:
            named.append(("model.norm.weight", self.norm.weight))
            head = "model.embed_tokens.weight" if self.config.tie_word_embeddings else "lm_head.weight"
            named.append((head, self.lm_head.weight))
        return named

    def allocate_cache(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """One (keys, values) pair per layer, each (1, kv_heads, max_position_embeddings, head_dim)."""
        shape = (1, self.config.num_key_value_heads, self.config.max_position_embeddings, self.config.head_dim)
        return [
            (
                torch.zeros(shape, device=self.device, dtype=self.dtype),
                torch.zeros(shape, device=self.device, dtype=self.dtype),
            )
            for _ in self.layers
        ]

    def rotary(self, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin of the rotary angles of positions start..end-1, each (end - start, head_dim)."""
        table = self._rotary_table
        if table is None or table[0].shape[0] < end:
            size = max(end, 2 * (0 if table is None else table[0].shape[0]))
            size = min(size, max(end, self.config.max_position_embeddings))
            positions = torch.arange(size, device=self.device)
            table = self._rotary_table = rotary_cos_sin(positions, self.config.head_dim, self.config.rope_theta, self.dtype)
        return table[0][start:end], table[1][start:end]

    def clear_cache(self) -> None:
        """Drop the KV cache (its memory is freed once nothing else holds it) and forget its sequence."""
        self.kv_cache = None
        self.cache_owner = None
        self.cache_len = 0

    def generate(self, x: torch.Tensor, input_pos: torch.Tensor, request_id: str | None = None) -> torch.Tensor:
        """One forward step of the shard over a chunk; see the class docstring.

        A chunk starting at position 0 begins a new sequence: the cached one is forgotten
        (`cache_owner` None, `cache_len` 0) before the layers run, because they overwrite its
        cache from position 0, so a failed first step leaves an empty cache, never a stale one.
        Any other chunk must continue the cached sequence (the engine checks that before calling);
        it writes only positions at or after `cache_len`, so `cache_owner` and `cache_len` are
        advanced only once the step has succeeded, and a failed step leaves the cached sequence
        as it was, ready to be retried.
        """
        start = int(input_pos[0])
        length = int(input_pos.shape[0])
        if self.kv_cache is None:
            self.kv_cache = self.allocate_cache()
        if start == 0:
            self.cache_owner, self.cache_len = None, 0
        h = self.embed_tokens.forward(x) if self.embed_tokens is not None else x.to(self.dtype)
        cos, sin = self.rotary(start, start + length)
        # One new position attends to every cached one: no mask needed (the decoding fast path).
        mask = None if length == 1 else torch.from_numpy(causal_mask(start, length)).to(self.device)
        for layer, cache in zip(self.layers, self.kv_cache):
            h = layer.forward(h, cos, sin, mask, cache, start)
        self.cache_owner, self.cache_len = request_id, start + length
        if self.norm is not None and self.lm_head is not None:
            return self.lm_head.forward(self.norm.forward(h))
        return h
