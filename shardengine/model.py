"""`ShardedGeneralModel`: a Llama-style decoder that holds only one shard's layers.

RMSNorm, rotary position embeddings (the HF `rotate_half` layout), grouped-query attention,
a SwiGLU MLP and a preallocated KV cache. The embedding lives on the first shard, the final norm
and the LM head on the last. The KV cache (one key and one value tensor per layer, each of size
`max_position_embeddings`) is allocated on the first `generate` call, so an impossible
`max_position_embeddings` fails there, inside `generate`, with the backend's out-of-memory error.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shardengine.config import ModelConfig
from shardengine.errors import InvalidShardError
from shardengine.shard import Shard

__all__ = ["ShardedGeneralModel", "RMSNorm", "Attention", "MLP", "DecoderLayer", "rotary_cos_sin"]


def _weight(*shape: int, device: torch.device, dtype: torch.dtype) -> nn.Parameter:
    # Uninitialised on purpose: every weight is overwritten by load_shard_weights.
    return nn.Parameter(torch.empty(*shape, device=device, dtype=dtype), requires_grad=False)


class Linear(nn.Module):
    """A bias-free linear layer whose `weight` is (out_features, in_features), as in HF checkpoints."""

    def __init__(self, in_features: int, out_features: int, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = _weight(out_features, in_features, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)


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
        variance = x.float().pow(2).mean(-1, keepdim=True)
        normed = (x.float() * torch.rsqrt(variance + self.eps)).to(x.dtype)
        return self.weight * normed


def rotary_cos_sin(
    positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles of `positions` only: each (T, head_dim)."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64, device=positions.device).float() / head_dim
    inv_freq = 1.0 / (theta**exponents)
    freqs = positions.float()[:, None] * inv_freq[None, :]
    angles = torch.cat((freqs, freqs), dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + _rotate_half(x) * sin


class Attention(nn.Module):
    """Grouped-query attention that writes the chunk's keys and values into the KV cache."""

    def __init__(self, config: ModelConfig, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        hidden = config.hidden_size
        self.q_proj = Linear(hidden, self.num_heads * self.head_dim, device, dtype)
        self.k_proj = Linear(hidden, self.num_kv_heads * self.head_dim, device, dtype)
        self.v_proj = Linear(hidden, self.num_kv_heads * self.head_dim, device, dtype)
        self.o_proj = Linear(self.num_heads * self.head_dim, hidden, device, dtype)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor,
        cache: tuple[torch.Tensor, torch.Tensor],
        start: int,
    ) -> torch.Tensor:
        batch, length, _ = x.shape
        q = self.q_proj(x).view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q = _apply_rotary(q, cos, sin)
        k = _apply_rotary(k, cos, sin)
        k_cache, v_cache = cache
        end = start + length
        k_cache[:, :, start:end] = k
        v_cache[:, :, start:end] = v
        keys, values = k_cache[:, :, :end], v_cache[:, :, :end]
        if self.num_kv_heads != self.num_heads:
            repeats = self.num_heads // self.num_kv_heads
            keys = keys.repeat_interleave(repeats, dim=1)
            values = values.repeat_interleave(repeats, dim=1)
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        return self.o_proj(out.transpose(1, 2).reshape(batch, length, self.num_heads * self.head_dim))


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, config: ModelConfig, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__()
        self.gate_proj = Linear(config.hidden_size, config.intermediate_size, device, dtype)
        self.up_proj = Linear(config.hidden_size, config.intermediate_size, device, dtype)
        self.down_proj = Linear(config.intermediate_size, config.hidden_size, device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps, device, dtype)
        self.self_attn = Attention(config, device, dtype)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps, device, dtype)
        self.mlp = MLP(config, device, dtype)

    def forward(self, h, cos, sin, mask, cache, start):  # type: ignore[no-untyped-def]
        h = h + self.self_attn(self.input_layernorm(h), cos, sin, mask, cache, start)
        return h + self.mlp(self.post_attention_layernorm(h))


class ShardedGeneralModel(nn.Module):
    """The layers `shard.start_layer..shard.end_layer` of a Llama-style model.

    `generate(x, input_pos, request_id)` runs one forward step of the shard over the chunk `x`
    at positions `input_pos`: token ids (1, T) on the first shard, hidden states (1, T, H) on the
    others. It returns logits (1, T, vocab) from the last shard and hidden states otherwise.
    The KV cache belongs to one sequence at a time (`cache_owner`, the request id) and holds its
    first `cache_len` positions.
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

    def clear_cache(self) -> None:
        """Drop the KV cache (its memory is freed once nothing else holds it) and forget its sequence."""
        self.kv_cache = None
        self.cache_owner = None
        self.cache_len = 0

    def generate(self, x: torch.Tensor, input_pos: torch.Tensor, request_id: str | None = None) -> torch.Tensor:
        """One forward step of the shard over a chunk; see the class docstring.

        A chunk starting at position 0 begins a new sequence; any other chunk must continue the
        cached one (the engine checks that before calling). The cache's owner and length are only
        updated once the step has succeeded.
        """
        start = int(input_pos[0])
        length = int(input_pos.shape[0])
        if self.kv_cache is None:
            self.kv_cache = self.allocate_cache()
        if start == 0:
            self.cache_owner, self.cache_len = None, 0
        h = self.embed_tokens(x) if self.embed_tokens is not None else x.to(self.dtype)
        cos, sin = rotary_cos_sin(input_pos, self.config.head_dim, self.config.rope_theta, self.dtype)
        mask = torch.ones((length, start + length), dtype=torch.bool, device=self.device).tril(diagonal=start)
        for layer, cache in zip(self.layers, self.kv_cache):
            h = layer(h, cos, sin, mask, cache, start)
        self.cache_owner, self.cache_len = request_id, start + length
        if self.norm is not None and self.lm_head is not None:
            return self.lm_head(self.norm(h))
        return h
