"""Named proxy sizes, by non-embedding parameters as RegMix names them.

Dense: `tiny` (~100K, for tests), `1m`, `5m`, `20m`, `60m`. Each `moe-*` preset has 8
experts, top-2 routing and the same active parameters per token as its dense namesake
(each expert is half as wide), so a dense and a MoE proxy cost about the same per token.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from mixer.errors import MixerError
from proxies.model import ProxyConfig

_DENSE = {
    "tiny": ProxyConfig(d_model=64, n_layers=2, n_heads=2),
    "1m": ProxyConfig(d_model=128, n_layers=5, n_heads=4),
    "5m": ProxyConfig(d_model=256, n_layers=6, n_heads=4),
    "20m": ProxyConfig(d_model=384, n_layers=11, n_heads=6),
    "60m": ProxyConfig(d_model=640, n_layers=12, n_heads=10),
}
PRESETS: dict[str, ProxyConfig] = {
    **_DENSE, **{f"moe-{name}": replace(cfg, n_experts=8, top_k=2) for name, cfg in _DENSE.items()}}


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
