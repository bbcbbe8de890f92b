"""Decode speed of shardengine against transformers' `generate` (greedy, KV cache) on the same
weights: the tiny test model and a ~50M-parameter random model (`shardengine.tiny --preset 50m`).

    python bench/engine_decode.py [--repeat 3] [--tokens 64] [--same-process]

Reports decode tokens/s of each (median of the repeats), their ratio, and the engine's first-token
latency (prompt to first sampled token, model already loaded). The engine runs through its async
API (each step a hop to its worker thread), transformers in the calling thread. The repeats
alternate engine and transformers, so a ratio compares runs made under the same load.

Each measurement runs in a fresh Python process by default. With `--same-process` they all run in
this one, as the first version of this benchmark did. There the engine's worker thread and
transformers' calling thread each own an OpenMP team, more OpenMP threads than a 2-core machine
has cores, and the engine slows down (measured on the tiny model: about 1700 tok/s in a process
of its own, 1100 to 1400 once transformers had run in the same process; with one intra-op thread
in the engine's worker, about 1550 either way), most likely because libgomp stops spinning when
it has more threads than cores, so each parallel op wakes a sleeping thread.

torch's OpenMP threads spin-wait after each parallel op. On a machine whose cores are busy with
other work, that makes every step wait for descheduled threads (measured on a 2-core machine with
two busy processes: a tiny-model step went from 0.5 ms to 15 ms). `OMP_WAIT_POLICY=PASSIVE` in the
environment (it must be set before torch is imported) avoids it; the table's title line and the
JSON record the policy the run used, so compare runs made with the same one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
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


def measure(side: str, model_dir: Path, n_layers: int, tokens: int, isolate: bool) -> dict:
    """One measurement of `side` ("engine" or "transformers"), in a fresh process if `isolate`."""
    if isolate:
        command = [sys.executable, __file__, "--measure", side, "--model", str(model_dir), "--layers", str(n_layers),
                   "--tokens", str(tokens)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])
    if side == "engine":
        rate, first, ids = asyncio.run(engine_decode(model_dir, n_layers, tokens))
        return {"rate": rate, "first": first, "ids": ids}
    prompt = np.asarray([Tokenizer.from_file(str(model_dir / "tokenizer.json")).encode(PROMPT).ids])
    rate, ids = transformers_decode(model_dir, prompt, tokens)
    return {"rate": rate, "ids": ids}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--same-process", action="store_true", help="measure both sides in this process")
    parser.add_argument("--measure", choices=["engine", "transformers"], help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--layers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # one measurement, in a process of its own: its result as a JSON line
        torch.manual_seed(0)
        print(json.dumps(measure(args.measure, args.model, args.layers, args.tokens, isolate=False)))
        return
    torch.manual_seed(0)
    policy = os.environ.get("OMP_WAIT_POLICY", "default (spin)")
    isolate = not args.same_process
    print(f"OMP_WAIT_POLICY={policy}, torch threads {torch.get_num_threads()}, {args.tokens} tokens, "
          f"median of {args.repeat}, {'a process per measurement' if isolate else 'one process'}")
    rows, data = [], {"settings": {"omp_wait_policy": policy, "torch_threads": torch.get_num_threads(),
                                   "tokens": args.tokens, "repeat": args.repeat, "process_per_measurement": isolate}}
    with tempfile.TemporaryDirectory(prefix="bench-decode-") as tmp:
        for preset in ("tiny", "50m"):
            model_dir = write_tiny_model(Path(tmp) / preset, **PRESETS[preset])
            parameters = count_parameters(json.loads((model_dir / "config.json").read_text()))
            n_layers = PRESETS[preset]["layers"]
            engine_rates, firsts, hf_rates, same = [], [], [], True
            for _ in range(args.repeat):
                ours = measure("engine", model_dir, n_layers, args.tokens, isolate)
                theirs = measure("transformers", model_dir, n_layers, args.tokens, isolate)
                engine_rates.append(ours["rate"])
                firsts.append(ours["first"] * 1000)
                hf_rates.append(theirs["rate"])
                same = same and ours["ids"] == theirs["ids"]
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
