"""Decode speed of shardengine against transformers' `generate` (greedy, KV cache) on the same
weights: the tiny test model and a ~50M-parameter random model (`shardengine.tiny --preset 50m`).

    python bench/engine_decode.py [--repeat 3] [--tokens 64]

Reports decode tokens/s of each (median of the repeats), their ratio, and the engine's first-token
latency (prompt to first sampled token, model already loaded).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import median, report
from shardengine import Shard
from shardengine.downloader import LocalShardDownloader
from shardengine.engine import TorchDynamicShardInferenceEngine
from shardengine.tiny import PRESETS, count_parameters, write_tiny_model
from tokenizers import Tokenizer

PROMPT = "The quick brown fox jumps over the lazy dog because"


async def engine_decode(model_dir: Path, n_layers: int, tokens: int) -> tuple[float, float, list[int]]:
    engine = TorchDynamicShardInferenceEngine(LocalShardDownloader())
    shard = Shard(str(model_dir), 0, n_layers - 1, n_layers)
    await engine.ensure_shard(shard)
    prompt = await engine.encode(shard, PROMPT)
    started = time.perf_counter()
    logits, state = await engine.infer_tensor("bench", shard, prompt)
    token = await engine.sample(logits)
    first_token = time.perf_counter() - started
    ids = [int(token[0, 0])]
    started = time.perf_counter()
    for _ in range(tokens - 1):
        logits, state = await engine.infer_tensor("bench", shard, token, state)
        token = await engine.sample(logits)
        ids.append(int(token[0, 0]))
    decode = (tokens - 1) / (time.perf_counter() - started)
    engine.shutdown()
    return decode, first_token, ids


def transformers_decode(model_dir: Path, prompt: np.ndarray, tokens: int) -> tuple[float, list[int]]:
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    inputs = torch.from_numpy(prompt)
    with torch.inference_mode():
        model.generate(inputs, max_new_tokens=2, min_new_tokens=2, do_sample=False)  # warm-up
        started = time.perf_counter()
        out = model.generate(inputs, max_new_tokens=1, min_new_tokens=1, do_sample=False, use_cache=True)
        first = time.perf_counter() - started
        started = time.perf_counter()
        out = model.generate(inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, use_cache=True)
        total = time.perf_counter() - started
    # decode rate without the prefill step, like the engine's
    return (tokens - 1) / max(total - first, 1e-9), out[0, prompt.shape[1]:].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    rows, data = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-decode-") as tmp:
        for preset in ("tiny", "50m"):
            model_dir = write_tiny_model(Path(tmp) / preset, **PRESETS[preset])
            parameters = count_parameters(json.loads((model_dir / "config.json").read_text()))
            n_layers = PRESETS[preset]["layers"]
            prompt = np.asarray([Tokenizer.from_file(str(model_dir / "tokenizer.json")).encode(PROMPT).ids])
            engine_rates, firsts, hf_rates, same = [], [], [], True
            for _ in range(args.repeat):
                rate, first, ids = asyncio.run(engine_decode(model_dir, n_layers, args.tokens))
                hf_rate, hf_ids = transformers_decode(model_dir, prompt, args.tokens)
                engine_rates.append(rate)
                firsts.append(first * 1000)
                hf_rates.append(hf_rate)
                same = same and ids == hf_ids
            ratio = median(engine_rates) / median(hf_rates)
            rows.append([preset, f"{parameters / 1e6:.2f}M", median(engine_rates), median(hf_rates),
                         round(ratio, 2), median(firsts), "yes" if same else "NO"])
            data[preset] = {"parameters": parameters, "engine_tokens_per_s": engine_rates,
                            "transformers_tokens_per_s": hf_rates, "ratio": ratio, "first_token_ms": firsts,
                            "same_greedy_ids": same}
    report("engine_decode", ["model", "parameters", "engine tok/s", "transformers tok/s", "ratio", "first token ms",
                             "same ids"], rows, data)


if __name__ == "__main__":
    main()
