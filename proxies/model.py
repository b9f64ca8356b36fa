"""The proxy language model: a small modern decoder, dense or mixture-of-experts.

RMSNorm, rotary position embeddings, SwiGLU MLPs, causal attention through
`scaled_dot_product_attention`, optionally tied input/output embeddings. With
`n_experts > 0` every MLP is a `MoEFeedForward` (proxies/moe.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from proxies.config import ProxyConfig
from proxies.moe import MoEFeedForward, RoutingStats


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rope_tables(head_dim: int, max_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin: [max_len, head_dim / 2]."""
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(max_len, dtype=torch.float64), inv)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [B, H, T, Dh]; rotates pairs (x[..., :Dh/2], x[..., Dh/2:])."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos, sin = cos[: x.shape[-2]].to(x.dtype), sin[: x.shape[-2]].to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: ProxyConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class SwiGLU(nn.Module):
    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.gate_up = nn.Linear(d_model, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: ProxyConfig):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.d_model)
        self.mlp = MoEFeedForward(cfg) if cfg.is_moe else SwiGLU(cfg.d_model, cfg.hidden)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class ProxyLM(nn.Module):
    """tokens [B, T] -> logits [B, T, vocab]."""

    def __init__(self, cfg: ProxyConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model)
        self.head = None if cfg.tie_embeddings else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        cos, sin = rope_tables(cfg.d_model // cfg.n_heads, cfg.max_seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2 scaled init of residual projections
            if name.endswith(("out.weight", "down.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.hidden_states(tokens)
        return F.linear(x, self.embed.weight if self.head is None else self.head.weight)

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, T] -> the final normalised hidden states [B, T, d_model]."""
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, self.rope_cos, self.rope_sin)
        return self.norm(x)

    def moe_layers(self) -> list[MoEFeedForward]:
        return [b.mlp for b in self.blocks if isinstance(b.mlp, MoEFeedForward)]

    def aux_loss(self) -> torch.Tensor | float:
        """Load-balancing plus z-loss of the last forward pass (0.0 for a dense model)."""
        return sum((layer.last_aux_loss for layer in self.moe_layers()), 0.0)

    def routing_stats(self) -> list[RoutingStats]:
        return [layer.last_routing for layer in self.moe_layers()]


def parameter_counts(model: ProxyLM) -> dict[str, int]:
    """total, non-embedding (RegMix's naming), and active per token (MoE: top-k experts only)."""
    cfg = model.cfg
    total = sum(p.numel() for p in model.parameters())
    embedding = model.embed.weight.numel() + (model.head.weight.numel() if model.head is not None else 0)
    inactive = 0
    for layer in model.moe_layers():
        per_expert = sum(p.numel() for p in layer.experts_parameters()) // cfg.n_experts
        inactive += per_expert * (cfg.n_experts - cfg.top_k)
    return {"total": total, "non_embedding": total - embedding, "active": total - inactive,
            "active_non_embedding": total - embedding - inactive}


def flops_per_token(cfg: ProxyConfig, seq_len: int) -> float:
    """Training FLOPs per token: 6 x (active non-embedding parameters + the output
    projection) + attention (PaLM, appendix B); what model FLOPs utilisation counts."""
    with torch.device("meta"):
        counts = parameter_counts(ProxyLM(cfg))
    return 6 * (counts["active_non_embedding"] + cfg.d_model * cfg.vocab_size) + 12 * cfg.n_layers * cfg.d_model * seq_len
