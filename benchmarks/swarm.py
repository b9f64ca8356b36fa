"""Swarm throughput: runs per hour and aggregate tokens/s of swarms of 1, 4, 16 and 64 dense
proxies against single runs (`train_proxy`, one at a time), in the same process.

    python benchmarks/swarm.py [--json out.json] [--device cpu|cuda] [--peak-tflops 989]

Every measured call trains complete runs (a fixed number of steps, then the final held-out
evaluation), after one untimed warm-up call of the same shape. Runs per hour = members x
3600 / wall of the call. On CUDA both paths use bf16 autocast; MFU counts 6 x active
parameters (+ output projection) + attention per token (proxies.model.flops_per_token)
against `--peak-tflops` (H100 SXM dense bf16: 989). Needs only torch and the data plane
(no Ray, no DuckDB), so it runs on a bare GPU machine.

Data: the Python standard library's source and the C/C++ headers of installed packages
(built-in data), byte tokenizer, in a temporary folder.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import parser, report  # noqa: E402
from mixer.builtin import builtin_documents  # noqa: E402
from mixer.domain import open_domains  # noqa: E402
from mixer.ingest import IngestConfig, ingest_domain  # noqa: E402
from mixer.mixture import Mixture  # noqa: E402
from mixer.tokenizers import ByteTokenizer  # noqa: E402
from proxies.model import flops_per_token  # noqa: E402
from proxies.presets import preset_config  # noqa: E402
from proxies.swarm import train_swarm  # noqa: E402
from proxies.train import TrainConfig, train_proxy  # noqa: E402

SHAPES = {  # per device: sequence length, sequences per step, steps per run, presets and swarm sizes
    "cpu": dict(seq_len=128, batch_size=16, steps=12, presets=["tiny", "1m"], sizes=[1, 4, 16]),
    "cuda": dict(seq_len=512, batch_size=32, steps=40, presets=["tiny", "1m", "5m", "20m"], sizes=[1, 4, 16, 64]),
}


def build_domains(root: Path) -> dict:
    for name in ("python", "cpp"):
        docs = (text for _, text in builtin_documents(name, 3_000_000))
        ingest_domain(root, name, docs, ByteTokenizer(), IngestConfig())
    return open_domains(root)


def members(n: int) -> list[tuple[Mixture, int]]:
    return [(Mixture.normalized({"python": 1.0 + i % 3, "cpp": 1.0 + i % 5}), i) for i in range(n)]


def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    fn()  # warm-up: allocator, kernels, page cache
    _synchronize(device)
    start = time.perf_counter()
    fn()
    _synchronize(device)
    return time.perf_counter() - start


def measure(domains: dict, preset: str, size: int, device: str, shape: dict, compile_step: bool = False
            ) -> float | None:
    """Wall seconds of one call training `size` runs as a swarm (None: out of memory)."""
    cfg = TrainConfig(preset=preset, tokens=shape["steps"] * shape["batch_size"] * shape["seq_len"],
                      seq_len=shape["seq_len"], batch_size=shape["batch_size"], device=device,
                      eval_every=10**9, eval_tokens=4 * shape["seq_len"])
    try:
        return timed(lambda: train_swarm(cfg, domains, members(size), compile_step), device)
    except torch.OutOfMemoryError:
        return None
    finally:
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()


def single(domains: dict, preset: str, device: str, shape: dict) -> float:
    cfg = TrainConfig(preset=preset, tokens=shape["steps"] * shape["batch_size"] * shape["seq_len"],
                      seq_len=shape["seq_len"], batch_size=shape["batch_size"], device=device,
                      eval_every=10**9, eval_tokens=4 * shape["seq_len"])
    mixture, seed = members(1)[0]
    return timed(lambda: train_proxy(replace(cfg, seed=seed), domains, mixture), device)


def agreement(domains: dict, device: str, shape: dict) -> float:
    """Largest |held-out loss difference| between a tiny swarm's members and single runs
    with the same seeds, on this device (bf16 on CUDA: agreement within bf16 noise)."""
    cfg = TrainConfig(preset="tiny", tokens=20 * shape["batch_size"] * shape["seq_len"], seq_len=shape["seq_len"],
                      batch_size=shape["batch_size"], device=device, eval_every=10**9, eval_tokens=8 * shape["seq_len"])
    swarm = train_swarm(cfg, domains, members(4))
    alone = [train_proxy(replace(cfg, seed=seed), domains, mixture) for mixture, seed in members(4)]
    return max(abs(a.val_loss[k] - b.val_loss[k]) for a, b in zip(swarm, alone) for k in a.val_loss)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--peak-tflops", type=float, default=989.0)
    p.add_argument("--presets", help="comma-separated presets (default: the device's)")
    p.add_argument("--sizes", help="comma-separated swarm sizes (default: the device's)")
    p.add_argument("--compile", help="also measure these SIZE values with torch.compile (comma-separated)")
    args = p.parse_args()
    shape = dict(SHAPES[args.device])
    shape["presets"] = args.presets.split(",") if args.presets else shape["presets"]
    shape["sizes"] = [int(s) for s in args.sizes.split(",")] if args.sizes else shape["sizes"]
    compiled = [int(s) for s in args.compile.split(",")] if args.compile else []
    tokens_per_run = shape["steps"] * shape["batch_size"] * shape["seq_len"]
    figures: dict = {"tokens_per_run": tokens_per_run}
    with tempfile.TemporaryDirectory() as tmp:
        domains = build_domains(Path(tmp))
        vocab = next(iter(domains.values())).meta.vocab_size
        figures["max_loss_diff_swarm_vs_single"] = agreement(domains, args.device, shape)
        for preset in shape["presets"]:
            flops = flops_per_token(preset_config(preset, vocab), shape["seq_len"])
            base = single(domains, preset, args.device, shape)
            figures[f"runs_per_hour_{preset}_single"] = 3600 / base
            figures[f"mfu_single_{preset}"] = tokens_per_run / base * flops / (args.peak_tflops * 1e12)
            for size in shape["sizes"]:
                wall = measure(domains, preset, size, args.device, shape)
                key = f"{preset}_swarm{size}"
                if wall is None:
                    figures[f"runs_per_hour_{key}"] = "out of memory"
                    continue
                figures[f"runs_per_hour_{key}"] = size * 3600 / wall
                figures[f"tokens_per_s_{key}"] = size * tokens_per_run / wall
                figures[f"mfu_{key}"] = size * tokens_per_run / wall * flops / (args.peak_tflops * 1e12)
                print(f"{preset} swarm {size}: {size * 3600 / wall:.0f} runs/h ({3600 / base:.0f} single)", flush=True)
            for size in compiled:
                start = time.perf_counter()
                wall = measure(domains, preset, size, args.device, shape, compile_step=True)
                key = f"{preset}_swarm{size}_compiled"
                if wall is None:
                    figures[f"runs_per_hour_{key}"] = "out of memory"
                    continue
                figures[f"first_call_s_{key}"] = time.perf_counter() - start - wall  # compile included
                figures[f"runs_per_hour_{key}"] = size * 3600 / wall
                figures[f"mfu_{key}"] = size * tokens_per_run / wall * flops / (args.peak_tflops * 1e12)
                print(f"{preset} swarm {size} compiled: {size * 3600 / wall:.0f} runs/h", flush=True)
    suffix = "gpu" if args.device == "cuda" else "cpu"
    best_1m = [v for k, v in figures.items() if k.startswith("runs_per_hour_1m_swarm16") and isinstance(v, float)]
    if best_1m:
        figures[f"swarm_speedup_1m_{suffix}"] = max(best_1m) / figures["runs_per_hour_1m_single"]
    if args.device == "cuda":
        swarm_mfus = [v for k, v in figures.items() if k.startswith("mfu_20m_swarm") and isinstance(v, float)]
        figures["mfu_swarm_20m_gpu"] = max(swarm_mfus) if swarm_mfus else "not measured"
        figures["mfu_single_20m_gpu"] = figures.get("mfu_single_20m", "not measured")
    report(f"Swarm training ({args.device})", figures,
           {"swarm_speedup_1m_gpu": ">= 10", "mfu_swarm_20m_gpu": ">= 0.40"}, args.json)


if __name__ == "__main__":
    main()
