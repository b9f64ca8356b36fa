"""Named proxy sizes, by non-embedding parameters as RegMix names them.

Dense: `tiny` (~100K, for tests), `1m`, `5m`, `20m`, `60m`. Each `moe-*` preset has 8
experts, top-2 routing and the same active parameters per token as its dense namesake
(each expert is half as wide), so a dense and a MoE proxy cost about the same per token.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from mixer.errors import MixerError
from proxies.config import ProxyConfig

_DENSE = {
    "tiny": ProxyConfig(d_model=64, n_layers=2, n_heads=2),
    "1m": ProxyConfig(d_model=128, n_layers=5, n_heads=4),
    "5m": ProxyConfig(d_model=256, n_layers=6, n_heads=4),
    "20m": ProxyConfig(d_model=384, n_layers=11, n_heads=6),
    "60m": ProxyConfig(d_model=640, n_layers=12, n_heads=10),
}
PRESETS: dict[str, ProxyConfig] = {
    **_DENSE, **{f"moe-{name}": replace(cfg, n_experts=8, top_k=2) for name, cfg in _DENSE.items()}}


# Swarm sizes that fit one H100 (80 GB) at 32 x 512 tokens per step, bf16, and gave the most
# runs per hour there (benchmarks/swarm.py, 2026-11-26): 64 members of 5m or 20m ran out of
# memory, 16 fit. Unmeasured presets are not swarmed by default.
SWARM_PER_GPU = {"tiny": 64, "1m": 64, "5m": 16, "20m": 16}
_MEASURED_TOKENS_PER_STEP = 32 * 512


def default_swarm(preset: str, gpus_per_run: float, tokens_per_step: int) -> int:
    """Runs one task trains together when the user gives no `--swarm`: 1 on CPU (a swarm
    measured no faster there) and for presets not measured on a GPU (MoE, 60m); on GPUs
    the measured `SWARM_PER_GPU`, scaled down in powers of two for more activation memory
    per member (longer or larger batches) or a fraction of a GPU."""
    if gpus_per_run <= 0 or preset not in SWARM_PER_GPU:
        return 1
    size = SWARM_PER_GPU[preset]
    while size > 1 and size * tokens_per_step > SWARM_PER_GPU[preset] * _MEASURED_TOKENS_PER_STEP * min(1.0, gpus_per_run):
        size //= 2
    return size


def preset_config(name: str, vocab_size: int) -> ProxyConfig:
    if name not in PRESETS:
        raise MixerError(f"unknown proxy preset '{name}' (choose from {', '.join(PRESETS)})")
    return replace(PRESETS[name], vocab_size=vocab_size)


def preset_parameters(name: str, vocab_size: int) -> dict[str, int]:
    """`parameter_counts` of a preset, built on the meta device (no memory, no init)."""
    import torch

    from proxies.model import ProxyLM, parameter_counts

    with torch.device("meta"):
        return parameter_counts(ProxyLM(preset_config(name, vocab_size)))


def preset_table(vocab_size: int) -> pd.DataFrame:
    """One row per preset: shape, experts, and total, non-embedding and active parameters."""
    rows = []
    for name, cfg in PRESETS.items():
        counts = preset_parameters(name, vocab_size)
        rows.append({"preset": name, "d_model": cfg.d_model, "layers": cfg.n_layers, "heads": cfg.n_heads,
                     "experts": f"{cfg.n_experts} (top-{cfg.top_k})" if cfg.is_moe else "-",
                     "total": counts["total"], "non_embedding": counts["non_embedding"], "active": counts["active"]})
    return pd.DataFrame(rows)
