"""Proxy training speed: tokens/s per preset, the overhead of train_proxy against a plain
training loop of the same model, Ray scaling from 1 to 2 workers, and (with --device cuda)
bf16 throughput and model FLOPs utilisation of the 20m presets; on CPU, `run_overhead_s`:
the seconds of a tiny run (200k tokens, warm cluster) that are not training steps.

    python benchmarks/proxy.py [--json out.json] [--device cuda] [--peak-tflops 989] [--quick]

`--quick`: a third of the timed steps, 4 runs per Ray measurement (same keys).

Data: built-in data (the standard library's source), ingested into a temporary workspace.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import parser, report  # noqa: E402
from mixer import Mixture  # noqa: E402
from mixer.corpus import AddRequest, add_corpus  # noqa: E402
from mixer.domain import open_domains  # noqa: E402
from mixer.workspace import open_workspace  # noqa: E402
from proxies import ProxyLM, TrainConfig, preset_config, train_proxy  # noqa: E402
from proxies.model import flops_per_token  # noqa: E402
from proxies.runner import ProxyJob, ProxyRunner, RunnerConfig  # noqa: E402


def build_domains(root: Path) -> dict:
    ws = open_workspace(root)
    for name in ("python", "docs"):
        add_corpus(ws, AddRequest(name=name, builtin=name, builtin_max_bytes=4_000_000))
    return open_domains(ws.domains_dir)


def proxy_tps(domains: dict, preset: str, steps: int, device: str, seq_len: int, batch: int) -> float:
    cfg = TrainConfig(preset=preset, tokens=steps * seq_len * batch, seq_len=seq_len, batch_size=batch,
                      device=device, eval_every=10**9, eval_tokens=seq_len + 1)
    result = train_proxy(cfg, domains, Mixture.uniform(domains))
    assert result.status == "done", result.error
    return result.tokens_per_s


def plain_loop_tps(preset: str, steps: int, device: str, seq_len: int, batch: int, vocab: int) -> float:
    """The same model and optimizer in the plainest loop: random tokens already in memory."""
    torch.manual_seed(0)
    dev = torch.device(device)
    model = ProxyLM(preset_config(preset, vocab)).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), fused=dev.type == "cuda")
    data = torch.randint(0, vocab, (steps, batch, seq_len + 1), device=dev)
    elapsed = 0.0
    for step in range(steps):
        tick = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            logits = model(data[step, :, :-1])
        loss = F.cross_entropy(logits.float().flatten(0, 1), data[step, :, 1:].flatten()) + model.aux_loss()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if step >= 2:  # skip warm-up steps
            elapsed += time.perf_counter() - tick
    return (steps - 2) * batch * seq_len / elapsed


def ray_wall(domains_dir: Path, workers: int, jobs: int, tokens: int) -> float:
    import ray

    ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        runner = ProxyRunner(domains_dir, RunnerConfig(cpus_per_run=1))
        batch = [ProxyJob(f"r{i}", TrainConfig(preset="tiny", tokens=tokens, seq_len=128, batch_size=16, threads=1,
                                               seed=i, eval_tokens=4096), Mixture.parse("python=0.5,docs=0.5"),
                          ["python", "docs"]) for i in range(jobs)]
        list(runner.run(batch[:workers], parallel=workers))  # warm the workers
        start = time.perf_counter()
        results = [r for _, r in runner.run(batch, parallel=workers)]
        assert all(r.status == "done" for r in results)
        return time.perf_counter() - start
    finally:
        ray.shutdown()


def run_overhead(domains_dir: Path, workers: int = 2, jobs: int = 8, tokens: int = 200_000) -> float:
    """Seconds per run on a warm embedded cluster that are not training steps: the wall of
    `jobs` tiny runs x workers / jobs, minus the mean time their training steps took."""
    import ray

    ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        runner = ProxyRunner(domains_dir, RunnerConfig(cpus_per_run=1))
        batch = [ProxyJob(f"o{i}", TrainConfig(preset="tiny", tokens=tokens, seq_len=128, batch_size=16, threads=1,
                                               seed=i), Mixture.parse("python=0.5,docs=0.5"), ["python", "docs"])
                 for i in range(jobs + workers)]
        list(runner.run(batch[:workers], parallel=workers))  # warm the workers
        start = time.perf_counter()
        results = [r for _, r in runner.run(batch[workers:], parallel=workers)]
        wall = time.perf_counter() - start
        training = [r.tokens_trained / r.tokens_per_s for r in results]
        return wall * workers / jobs - sum(training) / jobs
    finally:
        ray.shutdown()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (H100 SXM: 989)")
    p.add_argument("--quick", action="store_true", help="a third of the timed steps, 4 runs per Ray measurement")
    args = p.parse_args()
    share, ray_runs = (3, 4) if args.quick else (1, 8)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        domains = build_domains(Path(tmp) / "ws")
        vocab = next(iter(domains.values())).meta.vocab_size
        cpu_shape = dict(seq_len=256, batch=16)
        figures["tokens_per_s_tiny"] = proxy_tps(domains, "tiny", 40 // share, args.device, **cpu_shape)
        figures["tokens_per_s_1m"] = proxy_tps(domains, "1m", 30 // share, args.device, **cpu_shape)
        figures["tokens_per_s_moe_1m"] = proxy_tps(domains, "moe-1m", 30 // share, args.device, **cpu_shape)
        plain = plain_loop_tps("1m", 30 // share, args.device, vocab=vocab, **cpu_shape)
        figures["tokens_per_s_plain_loop_1m"] = plain
        figures["overhead_vs_plain_loop_1m"] = plain / figures["tokens_per_s_1m"] - 1
        if args.device == "cuda":
            gpu_shape = dict(seq_len=1024, batch=64)
            for preset in ("20m", "moe-20m"):
                tps = proxy_tps(domains, preset, 60 // share, "cuda", **gpu_shape)
                key = preset.replace("-", "_")
                figures[f"tokens_per_s_{key}_bf16"] = tps
                figures[f"mfu_{key}_bf16"] = tps * flops_per_token(preset_config(preset, vocab), 1024) / (args.peak_tflops * 1e12)
        else:
            one = ray_wall(Path(tmp) / "ws" / "domains", 1, ray_runs, 120_000)
            two = ray_wall(Path(tmp) / "ws" / "domains", 2, ray_runs, 120_000)
            figures["ray_wall_s_1_worker"], figures["ray_wall_s_2_workers"] = one, two
            figures["ray_speedup_2_workers"] = one / two
            figures["run_overhead_s"] = run_overhead(Path(tmp) / "ws" / "domains")
    report("Proxy training", figures, {"overhead_vs_plain_loop_1m": "<= 0.10", "ray_speedup_2_workers": ">= 1.8",
                                       "run_overhead_s": "< 2"},
           args.json)


if __name__ == "__main__":
    main()
