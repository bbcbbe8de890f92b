"""Write a small random-weight Llama-style model directory; nothing is downloaded.

    python -m shardengine.tiny DIR [--preset tiny|50m] [--layers N] [--hidden H] [--heads N]
                                   [--kv-heads N] [--intermediate N] [--vocab N] [--max-pos N]
                                   [--tie] [--seed N] [--files N]

The directory gets `config.json` (HF Llama fields), the weights under HF Llama tensor names
(`model.safetensors`, or `--files N` safetensors files with `model.safetensors.index.json`), and
a byte-level BPE `tokenizer.json` trained in place on the text bundled in `shardengine/data/`.
The same arguments always give the same files.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

__all__ = ["PRESETS", "MIN_VOCAB", "write_tiny_model", "model_config", "train_tokenizer", "random_weights",
           "count_parameters", "main"]

# The byte-level alphabet (256 tokens) plus <|endoftext|>.
MIN_VOCAB = 257
SPECIAL_TOKENS = ["<|endoftext|>"]

PRESETS: dict[str, dict[str, int]] = {
    # what the tests use: a few hundred kilobytes
    "tiny": dict(layers=2, hidden=32, heads=4, kv_heads=2, intermediate=64, vocab=320, max_pos=128),
    # about 50M parameters, for benchmarks
    "50m": dict(layers=12, hidden=512, heads=8, kv_heads=4, intermediate=2048, vocab=4096, max_pos=2048),
}


def corpus_text() -> str:
    """The text bundled with the package that the tokenizer is trained on."""
    return (resources.files("shardengine") / "data" / "corpus.txt").read_text(encoding="utf-8")


def train_tokenizer(vocab: int) -> Tokenizer:
    """A byte-level BPE tokenizer of at most `vocab` tokens, trained on the bundled text."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus_text().splitlines(), trainer)
    return tokenizer


def model_config(
    *,
    layers: int,
    hidden: int,
    heads: int,
    kv_heads: int,
    intermediate: int,
    vocab: int,
    max_pos: int,
    tie: bool = False,
    rms_norm_eps: float = 1e-5,
    rope_theta: float = 10000.0,
) -> dict:
    """An HF-style Llama `config.json` as a dict."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_act": "silu",
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "rms_norm_eps": rms_norm_eps,
        "rope_theta": rope_theta,
        "max_position_embeddings": max_pos,
        "tie_word_embeddings": tie,
        "torch_dtype": "float32",
        "bos_token_id": 0,
        "eos_token_id": 0,
    }


def random_weights(config: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random float32 weights under HF Llama names, scaled so activations and logits stay near 1."""
    generator = torch.Generator().manual_seed(seed)
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    head_dim = hidden // config["num_attention_heads"]
    q_out = config["num_attention_heads"] * head_dim
    kv_out = config["num_key_value_heads"] * head_dim

    def linear(out_features: int, in_features: int) -> torch.Tensor:
        return torch.randn(out_features, in_features, generator=generator) / in_features**0.5

    def norm() -> torch.Tensor:
        return 1.0 + 0.1 * torch.randn(hidden, generator=generator)

    weights = {"model.embed_tokens.weight": torch.randn(config["vocab_size"], hidden, generator=generator)}
    for layer in range(config["num_hidden_layers"]):
        prefix = f"model.layers.{layer}."
        weights[prefix + "input_layernorm.weight"] = norm()
        weights[prefix + "self_attn.q_proj.weight"] = linear(q_out, hidden)
        weights[prefix + "self_attn.k_proj.weight"] = linear(kv_out, hidden)
        weights[prefix + "self_attn.v_proj.weight"] = linear(kv_out, hidden)
        weights[prefix + "self_attn.o_proj.weight"] = linear(hidden, q_out)
        weights[prefix + "post_attention_layernorm.weight"] = norm()
        weights[prefix + "mlp.gate_proj.weight"] = linear(inter, hidden)
        weights[prefix + "mlp.up_proj.weight"] = linear(inter, hidden)
        weights[prefix + "mlp.down_proj.weight"] = linear(hidden, inter)
    weights["model.norm.weight"] = norm()
    if not config["tie_word_embeddings"]:
        weights["lm_head.weight"] = linear(config["vocab_size"], hidden)
    return weights


def count_parameters(config: dict) -> int:
    """How many parameters `random_weights(config)` holds, without making them."""
    hidden, inter, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    head_dim = hidden // config["num_attention_heads"]
    q_out = config["num_attention_heads"] * head_dim
    kv_out = config["num_key_value_heads"] * head_dim
    per_layer = 2 * hidden + 2 * q_out * hidden + 2 * kv_out * hidden + 3 * inter * hidden
    head = 0 if config["tie_word_embeddings"] else vocab * hidden
    return vocab * hidden + config["num_hidden_layers"] * per_layer + hidden + head


def write_tiny_model(
    directory: str | Path,
    *,
    layers: int = 2,
    hidden: int = 32,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 64,
    vocab: int = 320,
    max_pos: int = 128,
    tie: bool = False,
    seed: int = 0,
    files: int = 1,
    rms_norm_eps: float = 1e-5,
    rope_theta: float = 10000.0,
) -> Path:
    """Write config.json, the weights and tokenizer.json into `directory` (made if needed)."""
    if vocab < MIN_VOCAB:
        raise ValueError(f"vocab must be >= {MIN_VOCAB} (256 byte tokens and <|endoftext|>), got {vocab}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = model_config(
        layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads, intermediate=intermediate,
        vocab=vocab, max_pos=max_pos, tie=tie, rms_norm_eps=rms_norm_eps, rope_theta=rope_theta,
    )
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    weights = random_weights(config, seed)
    if files <= 1:
        save_file(weights, str(directory / "model.safetensors"), metadata={"format": "pt"})
    else:
        names = list(weights)
        weight_map = {}
        for part in range(files):
            file_name = f"model-{part + 1:05d}-of-{files:05d}.safetensors"
            chunk = {name: weights[name] for name in names[part::files]}
            save_file(chunk, str(directory / file_name), metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(chunk, file_name))
        index = {
            "metadata": {"total_size": sum(t.numel() * t.element_size() for t in weights.values())},
            "weight_map": weight_map,
        }
        (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    train_tokenizer(vocab).save(str(directory / "tokenizer.json"))
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shardengine.tiny", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    for name in ("layers", "hidden", "heads", "kv-heads", "intermediate", "vocab", "max-pos"):
        parser.add_argument(f"--{name}", type=int, default=None, help="overrides the preset")
    parser.add_argument("--tie", action="store_true", help="tie the LM head to the embedding")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--files", type=int, default=1, help="split the weights over this many files")
    args = parser.parse_args(argv)
    params = dict(PRESETS[args.preset])
    for key in params:
        value = getattr(args, key)
        if value is not None:
            params[key] = value
    write_tiny_model(args.directory, tie=args.tie, seed=args.seed, files=args.files, **params)
    print(f"wrote {args.directory} ({count_parameters(json.loads((args.directory / 'config.json').read_text()))} parameters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
