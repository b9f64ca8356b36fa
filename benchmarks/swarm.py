"""Swarm throughput: runs per hour and aggregate tokens/s of swarms of 1, 4, 16 and 64
proxies (dense and MoE) against single runs (`train_proxy`, one at a time), in the same
process.

    python benchmarks/swarm.py [--json out.json] [--device cpu|cuda] [--peak-tflops 989]
        [--compiled 1m:64:inductor,...] [--breakdown 20m:16,...] [--profile-dir DIR]
        [--packed 2,4] [--repeats 3] [--quick]

Every measured call trains complete runs (a fixed number of steps, then the final held-out
evaluation), after one untimed warm-up call of the same shape, so a compile is paid in the
warm-up and reported apart (`first_call_s_*`). Runs per hour = members x 3600 / the least
wall of `--repeats` calls. `--packed K` measures the simpler lever, K processes of single
runs sharing the device at once (Ray's `--gpus 1/K` packing, without Ray). On CUDA both paths use bf16 autocast; MFU counts 6 x active parameters (+ output
projection) + attention per token (proxies.model.flops_per_token) against `--peak-tflops`
(H100 SXM dense bf16: 989).

`--breakdown PRESET:SIZE` says where a swarm's time goes: building it, its loaders, one
step's batch assembly, one training step on a fixed batch in each step mode (steady
state, so `step_mfu_*` is the number to compare with nanoGPT-class loops) and the final
evaluation; with `--profile-dir`, a torch.profiler table of one eager and one compiled
step's kernels. Needs only torch and the data plane (no Ray, no DuckDB), so it runs on a
bare GPU machine.

Data: the Python standard library's source and the C/C++ headers of installed packages
(built-in data), byte tokenizer, in a temporary folder.

`--quick`: one measured call per figure (`--repeats 1`; same keys, noisier walls).
"""

from __future__ import annotations

import gc
import json
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
from proxies.swarm import StepCompile, Swarm, SwarmStep, swarm_loaders, train_swarm  # noqa: E402
from proxies.train import TrainConfig, _windows, train_proxy  # noqa: E402

SHAPES = {  # per device: sequence length, sequences per step, steps per run, presets and swarm sizes
    "cpu": dict(seq_len=128, batch_size=16, steps=12, presets=["tiny", "1m", "moe-tiny"], sizes=[1, 4, 16]),
    "cuda": dict(seq_len=512, batch_size=32, steps=40, presets=["tiny", "1m", "5m", "20m", "moe-1m", "moe-20m"],
                 sizes=[1, 4, 16, 64]),
}
CUDA_COMPILED = "1m:16:inductor,1m:64:inductor,1m:16:cudagraphs,1m:64:cudagraphs,20m:16:inductor"


def build_domains(root: Path) -> dict:
    for name in ("python", "cpp"):
        docs = (text for _, text in builtin_documents(name, 3_000_000))
        ingest_domain(root, name, docs, ByteTokenizer(), IngestConfig())
    return open_domains(root)


def members(n: int) -> list[tuple[Mixture, int]]:
    return [(Mixture.normalized({"python": 1.0 + i % 3, "cpp": 1.0 + i % 5}), i) for i in range(n)]


def train_config(preset: str, device: str, shape: dict) -> TrainConfig:
    return TrainConfig(preset=preset, tokens=shape["steps"] * shape["batch_size"] * shape["seq_len"],
                       seq_len=shape["seq_len"], batch_size=shape["batch_size"], device=device,
                       eval_every=10**9, eval_tokens=4 * shape["seq_len"])


def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _release(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


REPEATS = 3  # measured calls per figure (default of `--repeats`)


def timed(fn, device: str, repeats: int = REPEATS) -> tuple[float, float]:
    """(wall of a warm-up call, least wall of `repeats` measured calls): the warm-up pays
    allocator, kernels, page cache and any compile; the least wall is the one a shared
    machine disturbed least (a single-run baseline moved by half between two GPU runs)."""
    start = time.perf_counter()
    fn()
    _synchronize(device)
    first = time.perf_counter() - start
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _synchronize(device)
        walls.append(time.perf_counter() - start)
    return first, min(walls)


def measure(domains: dict, preset: str, size: int, device: str, shape: dict, mode: StepCompile,
            repeats: int = REPEATS) -> tuple[float, float] | None:
    """(first call, measured call) wall seconds of training `size` runs as a swarm (None: out of memory)."""
    cfg = train_config(preset, device, shape)
    try:
        return timed(lambda: train_swarm(cfg, domains, members(size), mode), device, repeats)
    except torch.OutOfMemoryError:
        return None
    finally:
        _release(device)


def single(domains: dict, preset: str, device: str, shape: dict, repeats: int = REPEATS) -> float:
    mixture, seed = members(1)[0]
    cfg = replace(train_config(preset, device, shape), seed=seed)
    return timed(lambda: train_proxy(cfg, domains, mixture), device, repeats)[1]


def _packed_worker(root: str, cfg: TrainConfig, runs: int, barrier) -> float:
    """One of `packed`'s processes: a warm-up run, then (once every process is warm) `runs`
    single runs; returns their wall seconds."""
    domains = open_domains(Path(root))
    mixture, _ = members(1)[0]
    train_proxy(cfg, domains, mixture)
    barrier.wait()
    start = time.perf_counter()
    for seed in range(runs):
        train_proxy(replace(cfg, seed=seed), domains, mixture)
    _synchronize(cfg.device)
    return time.perf_counter() - start


def packed(root: Path, preset: str, device: str, shape: dict, processes: int, runs: int) -> float:
    """Wall seconds of `processes` processes training `runs` single runs each at once on one
    device: what Ray does with `--gpus 1/processes` (it schedules that many tasks, each its
    own worker process, on every GPU), without Ray, which the GPU image lacks."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # CUDA cannot be used in forked children
    threads = max(1, torch.get_num_threads() // processes) if device == "cpu" else 1
    cfg = replace(train_config(preset, device, shape), threads=threads)
    with context.Manager() as manager, context.Pool(processes) as pool:
        barrier = manager.Barrier(processes)  # a task waits there: each process holds exactly one
        walls = pool.starmap(_packed_worker, [(str(root), cfg, runs, barrier)] * processes)
    return max(walls)


def packing_figures(root: Path, preset: str, device: str, shape: dict, process_counts: list[int],
                    single_wall: float, runs: int = REPEATS) -> dict:
    """Runs per hour of K packed processes (`packed`, `runs` runs each) and their ratio to
    one run at a time, for each K."""
    out = {}
    for k in process_counts:
        rate = k * runs * 3600 / packed(root, preset, device, shape, k, runs)
        out[f"runs_per_hour_{preset}_packed{k}"] = rate
        out[f"packed{k}_speedup_{preset}"] = rate * single_wall / 3600
        print(f"{preset}_packed{k}: {rate:.0f} runs/h ({3600 / single_wall:.0f} single)", flush=True)
    return out


def agreement(domains: dict, device: str, shape: dict, preset: str) -> float:
    """Largest |held-out loss difference| between a swarm's members and single runs with
    the same seeds, on this device (bf16 on CUDA: agreement within bf16 noise)."""
    cfg = TrainConfig(preset=preset, tokens=20 * shape["batch_size"] * shape["seq_len"], seq_len=shape["seq_len"],
                      batch_size=shape["batch_size"], device=device, eval_every=10**9, eval_tokens=8 * shape["seq_len"])
    swarm = train_swarm(cfg, domains, members(4), StepCompile.eager)
    alone = [train_proxy(replace(cfg, seed=seed), domains, mixture) for mixture, seed in members(4)]
    return max(abs(a.val_loss[k] - b.val_loss[k]) for a, b in zip(swarm, alone) for k in a.val_loss)


def _seconds(fn, device: str, repeats: int = 1) -> float:
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _synchronize(device)
    return (time.perf_counter() - start) / repeats


def breakdown(domains: dict, preset: str, size: int, device: str, shape: dict, peak_tflops: float,
              modes: list[StepCompile], profile_dir: Path | None) -> dict:
    """Where one swarm's time goes (module docstring): seconds per phase, steady-state step
    time and MFU per step mode."""
    cfg = train_config(preset, device, shape)
    dev = torch.device(device)
    vocab = next(iter(domains.values())).meta.vocab_size
    key = f"{preset}_swarm{size}"
    out: dict = {}
    holder: dict = {}
    out[f"build_s_{key}"] = _seconds(lambda: holder.update(swarm=Swarm(cfg, vocab, list(range(size)), dev)), device)
    swarm = holder["swarm"]
    out[f"loaders_s_{key}"] = _seconds(lambda: holder.update(loaders=swarm_loaders(cfg, domains, members(size), dev)),
                                       device)
    loaders = holder["loaders"]
    batch = lambda: torch.stack([next(loader).tokens for loader in loaders])  # noqa: E731
    batch()
    out[f"batch_ms_{key}"] = 1000 * _seconds(batch, device, repeats=10)
    tokens = batch()
    flops = flops_per_token(preset_config(preset, vocab), shape["seq_len"]) * tokens[:, :, 1:].numel()
    for mode in modes:
        step = SwarmStep(swarm, cfg, dev, mode)
        start = time.perf_counter()
        for i in range(3):  # compile, then the graph's warm-up replays
            step(tokens, i)
        _synchronize(device)
        out[f"warmup_s_{key}_{mode.value}"] = time.perf_counter() - start
        seconds = _seconds(lambda: step(tokens, 3), device, repeats=10)
        out[f"step_ms_{key}_{mode.value}"] = 1000 * seconds
        out[f"step_mfu_{key}_{mode.value}"] = flops / seconds / (peak_tflops * 1e12)
        if profile_dir is not None:
            _profile(lambda: step(tokens, 3), profile_dir / f"kernels_{key}_{mode.value}.txt", device)
    windows = _windows(next(iter(domains.values())).val_tokens, cfg.seq_len, cfg.eval_tokens)
    out[f"eval_s_{key}"] = _seconds(lambda: swarm.evaluate(windows, cfg.batch_size, dev), device) * len(domains)
    for k, v in out.items():
        print(f"  {k}: {v:.4g}", flush=True)
    _release(device)
    return out


def _profile(fn, path: Path, device: str) -> None:
    """torch.profiler's kernel table of two calls of `fn`, by total device time."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        fn()
        fn()
        _synchronize(device)
    sort = "cuda_time_total" if device == "cuda" else "cpu_time_total"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(prof.key_averages().table(sort_by=sort, row_limit=40, max_name_column_width=70))


def _pairs(text: str | None, arity: int) -> list[list[str]]:
    return [item.split(":") for item in text.split(",") if len(item.split(":")) == arity] if text else []


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--peak-tflops", type=float, default=989.0)
    p.add_argument("--presets", help="comma-separated presets (default: the device's)")
    p.add_argument("--sizes", help="comma-separated swarm sizes (default: the device's)")
    p.add_argument("--compiled", help="also measure PRESET:SIZE:MODE (inductor|cudagraphs), comma-separated "
                                      f"(CUDA default: {CUDA_COMPILED}; 'none' for none)")
    p.add_argument("--breakdown", help="PRESET:SIZE pairs to take apart, comma-separated")
    p.add_argument("--packed", help="also measure K processes of single runs sharing the device (Ray's "
                                    "--gpus 1/K packing), for K in this comma-separated list (CUDA default: 2,4; "
                                    "'none' for none)")
    p.add_argument("--packed-presets", default="1m,20m", help="presets --packed measures [default: 1m,20m]")
    p.add_argument("--repeats", type=int, default=REPEATS, help="measured calls per figure, the least wall kept")
    p.add_argument("--profile-dir", type=Path, help="write the breakdown's kernel tables here")
    p.add_argument("--quick", action="store_true", help="one measured call per figure (same keys)")
    args = p.parse_args()
    if args.quick:
        args.repeats = 1
    shape = dict(SHAPES[args.device])
    shape["presets"] = args.presets.split(",") if args.presets else shape["presets"]
    shape["sizes"] = [int(s) for s in args.sizes.split(",")] if args.sizes else shape["sizes"]
    compiled = _pairs(args.compiled or (CUDA_COMPILED if args.device == "cuda" else None), 3)
    tokens_per_run = shape["steps"] * shape["batch_size"] * shape["seq_len"]
    figures: dict = {"tokens_per_run": tokens_per_run}
    packing = [int(k) for k in (args.packed or ("2,4" if args.device == "cuda" else "none")).split(",")
               if k != "none"]
    with tempfile.TemporaryDirectory() as tmp:
        domains = build_domains(Path(tmp))
        vocab = next(iter(domains.values())).meta.vocab_size
        figures["max_loss_diff_swarm_vs_single"] = agreement(domains, args.device, shape, "tiny")
        figures["max_loss_diff_swarm_vs_single_moe"] = agreement(domains, args.device, shape, "moe-tiny")
        for preset, size in _pairs(args.breakdown, 2):
            modes = [StepCompile.eager] + ([StepCompile.inductor] if args.device == "cuda" else [])
            figures.update(breakdown(domains, preset, int(size), args.device, shape, args.peak_tflops, modes,
                                     args.profile_dir))
        for preset in shape["presets"]:
            flops = flops_per_token(preset_config(preset, vocab), shape["seq_len"])
            base = single(domains, preset, args.device, shape, args.repeats)
            figures[f"runs_per_hour_{preset}_single"] = 3600 / base
            figures[f"mfu_single_{preset}"] = tokens_per_run / base * flops / (args.peak_tflops * 1e12)
            runs = [(size, StepCompile.eager) for size in shape["sizes"]]
            runs += [(int(size), StepCompile(mode)) for name, size, mode in compiled if name == preset]
            for size, mode in runs:
                key = f"{preset}_swarm{size}" + ("" if mode is StepCompile.eager else f"_{mode.value}")
                try:
                    walls = measure(domains, preset, size, args.device, shape, mode, args.repeats)
                except Exception as error:  # a compile mode this torch cannot run: say so, measure the rest
                    figures[f"runs_per_hour_{key}"] = f"failed: {type(error).__name__}: {str(error)[:100]}"
                    continue
                if walls is None:
                    figures[f"runs_per_hour_{key}"] = "out of memory"
                    continue
                first, wall = walls
                figures[f"runs_per_hour_{key}"] = size * 3600 / wall
                figures[f"tokens_per_s_{key}"] = size * tokens_per_run / wall
                figures[f"mfu_{key}"] = size * tokens_per_run / wall * flops / (args.peak_tflops * 1e12)
                if mode is not StepCompile.eager:
                    figures[f"first_call_s_{key}"] = first
                print(f"{key}: {size * 3600 / wall:.0f} runs/h ({3600 / base:.0f} single; first call {first:.1f} s)",
                      flush=True)
            if preset in args.packed_presets.split(","):
                figures.update(packing_figures(Path(tmp), preset, args.device, shape, packing, base, args.repeats))
            if args.json:  # what is measured survives a time limit that cuts the rest
                args.json.write_text(json.dumps({**figures, "partial": True}, indent=2))
    suffix = "gpu" if args.device == "cuda" else "cpu"
    for preset in shape["presets"]:  # every preset's swarm of 16 (any step mode) against its single run
        swarm16 = [v for k, v in figures.items() if k.startswith(f"runs_per_hour_{preset}_swarm16")
                   and isinstance(v, float)]
        if swarm16:
            figures[f"swarm16_speedup_{preset}_{suffix}"] = max(swarm16) / figures[f"runs_per_hour_{preset}_single"]
    best_1m = [v for k, v in figures.items() if k.startswith("runs_per_hour_1m_swarm16") and isinstance(v, float)]
    if best_1m:
        figures[f"swarm_speedup_1m_{suffix}"] = max(best_1m) / figures["runs_per_hour_1m_single"]
    any_1m = [v for k, v in figures.items() if k.startswith("runs_per_hour_1m_swarm") and isinstance(v, float)]
    if any_1m:
        figures[f"best_swarm_speedup_1m_{suffix}"] = max(any_1m) / figures["runs_per_hour_1m_single"]
    if args.device == "cuda":
        swarm_mfus = [v for k, v in figures.items() if k.startswith("mfu_20m_swarm") and isinstance(v, float)]
        figures["mfu_swarm_20m_gpu"] = max(swarm_mfus) if swarm_mfus else "not measured"
        figures["mfu_single_20m_gpu"] = figures.get("mfu_single_20m", "not measured")
    report(f"Swarm training ({args.device})", figures,
           {"swarm_speedup_1m_gpu": ">= 10", "mfu_swarm_20m_gpu": ">= 0.40"}, args.json)


if __name__ == "__main__":
    main()
