"""Mixture-of-experts feed-forward layer with dropless dispatch.

Each token picks its top-k experts from a softmax router (weights renormalised over the
k, as Mixtral). Tokens are sorted by expert and each expert runs one matmul over its
contiguous slice (a grouped matmul: the loop is over experts, never over tokens), so no
token is ever dropped. Optional shared experts (DeepSeekMoE) see every token.

Auxiliary losses, kept on the layer after each forward pass:
- Switch load balancing: E * sum_e f_e * P_e, with f_e the share of assignments to expert
  e and P_e its mean router probability (1 when perfectly balanced);
- router z-loss: mean(logsumexp(logits)^2), which keeps router logits small (ST-MoE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from proxies.model import ProxyConfig


@dataclass
class RoutingStats:
    """expert_index: int64 [N, k], the experts each token of the last batch chose;
    load: float [E], share of the N*k assignments that went to each expert."""

    expert_index: torch.Tensor
    load: torch.Tensor


class MoEFeedForward(nn.Module):
    def __init__(self, cfg: "ProxyConfig"):
        super().__init__()
        from proxies.model import SwiGLU

        d, h, e = cfg.d_model, cfg.expert_hidden, cfg.n_experts
        self.n_experts, self.top_k = e, cfg.top_k
        self.aux_loss_coef, self.z_loss_coef = cfg.aux_loss_coef, cfg.z_loss_coef
        self.router = nn.Linear(d, e, bias=False)
        self.w_gate_up = nn.Parameter(torch.randn(e, d, 2 * h) * 0.02)
        self.w_down = nn.Parameter(torch.randn(e, h, d) * 0.02)
        self.shared = SwiGLU(d, h * cfg.n_shared_experts) if cfg.n_shared_experts else None
        self.last_aux_loss = torch.zeros(())
        self.last_routing: RoutingStats | None = None

    def experts_parameters(self) -> list[nn.Parameter]:
        return [self.w_gate_up, self.w_down]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])                               # [M, d]
        logits = self.router(flat).float()                            # [M, E]
        probs, weights, experts = route(logits, self.top_k)
        y, counts = dropless_swiglu(flat, experts, weights.to(flat.dtype), self.w_gate_up, self.w_down)
        if self.shared is not None:
            y = y + self.shared(flat)
        load = counts.float() / experts.numel()
        self.last_aux_loss = auxiliary_loss(logits, probs, load, self.aux_loss_coef, self.z_loss_coef)
        self.last_routing = RoutingStats(experts.detach(), load.detach())
        return y.reshape(shape)


def route(logits: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Router logits [..., M, E] (float32) -> probabilities [..., M, E], the top-k weights
    [..., M, k] renormalised over the k (as Mixtral), and the chosen experts [..., M, k]."""
    probs = logits.softmax(dim=-1)
    weights, experts = probs.topk(top_k, dim=-1)
    return probs, weights / weights.sum(dim=-1, keepdim=True), experts


def dropless_swiglu(x: torch.Tensor, experts: torch.Tensor, weights: torch.Tensor, w_gate_up: torch.Tensor,
                    w_down: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every token's k experts, weighted and summed: x [M, d], experts [M, k] in [0, G),
    weights [M, k], w_gate_up [G, d, 2h], w_down [G, h, d] -> (y [M, d], counts [G], the
    assignments per expert). The M*k assignments are sorted by expert (stably), so each
    expert runs one matmul over its contiguous slice and no token is dropped. The G experts
    may be several models' (a swarm numbers member i's experts i*E to i*E + E - 1): a
    member's slices are then exactly those it would have alone."""
    top_k = experts.shape[-1]
    assignments = experts.reshape(-1)                                 # [M*k]
    order = torch.argsort(assignments, stable=True)
    token_of = order // top_k
    counts = torch.bincount(assignments, minlength=w_gate_up.shape[0])
    outputs = _grouped_swiglu(x[token_of], counts, w_gate_up, w_down)  # [M*k, d]
    outputs = outputs * weights.reshape(-1)[order, None]
    return torch.zeros_like(x).index_add_(0, token_of, outputs), counts


def auxiliary_loss(logits: torch.Tensor, probs: torch.Tensor, load: torch.Tensor, aux_loss_coef: float,
                   z_loss_coef: float) -> torch.Tensor:
    """Switch balance plus router z-loss (module docstring) of logits and probs [..., M, E]
    with load [..., E], the share of assignments per expert -> [...]."""
    balance = load.shape[-1] * (load * probs.mean(dim=-2)).sum(dim=-1)
    z_loss = torch.logsumexp(logits, dim=-1).pow(2).mean(dim=-1)
    return aux_loss_coef * balance + z_loss_coef * z_loss


def _grouped_swiglu(xs: torch.Tensor, counts: torch.Tensor, w_gate_up: torch.Tensor, w_down: torch.Tensor
                    ) -> torch.Tensor:
    """xs: [M, d] sorted by expert; counts: [G]. On CUDA under bf16 autocast one grouped
    GEMM per projection (`torch._grouped_mm`, as torchtitan), with no host sync; else one
    matmul pair per expert."""
    if xs.is_cuda and torch.is_autocast_enabled("cuda") and hasattr(torch, "_grouped_mm"):
        offsets = counts.cumsum(0).to(torch.int32)
        hidden = torch._grouped_mm(xs.to(torch.bfloat16), w_gate_up.to(torch.bfloat16), offs=offsets)
        gate, up = hidden.chunk(2, dim=-1)
        out = torch._grouped_mm(F.silu(gate) * up, w_down.to(torch.bfloat16), offs=offsets)
        return out.to(xs.dtype)
    pieces = []
    for e, chunk in enumerate(torch.split(xs, counts.tolist())):
        if chunk.numel() == 0:
            continue
        gate, up = (chunk @ w_gate_up[e].to(chunk.dtype)).chunk(2, dim=-1)
        pieces.append((F.silu(gate) * up) @ w_down[e].to(chunk.dtype))
    return torch.cat(pieces) if pieces else xs.new_zeros(xs.shape)
