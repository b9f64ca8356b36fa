"""Swarm training: N proxies of one preset on N mixtures as one batched computation.

A 1m proxy cannot fill an accelerator: its kernels are too small and launch-bound. Here the
N models' parameters are stacked (`torch.func.stack_module_state`) and `Swarm.forward` runs
`ProxyLM.forward` for all of them with batched matmuls: every linear layer is one `bmm`
over the swarm and attention is one `scaled_dot_product_attention` call over members x
batch. (`torch.func.vmap` of `functional_call` was the first version: it gives the same
numbers, but attention has no batching rule, so vmap loops over the members there.) The
sum of the members' losses is backpropagated once; members share no parameter, so each
gets exactly its own gradient. Each member keeps what a single run has:

- its own initialisation (the model built after `torch.manual_seed(init_seed or seed)`, as
  `train_proxy`),
- its own `MixtureLoader` stream (its mixture and seed),
- its own optimiser state (AdamW is elementwise, so one AdamW over stacked tensors is N
  independent ones) and its own gradient clipping (the norm is taken per member).

So a member computes what `train_proxy` computes with the same config and seed, with
batched kernels in place of single ones: the losses agree to float rounding over the first
steps (tests/proxies/test_swarm.py, 16 steps). Over longer runs training amplifies those
roundings as it amplifies any (another thread count does the same): on real text, after 48
steps, members differed from single runs by less than two data-order seeds of one single
run differ (README). A member that diverges is marked failed; the others go on.

MoE presets batch too, although their token dispatch has data-dependent shapes: the
swarm's routers run as one batched matmul, member i's experts are numbered i*E to
i*E + E - 1, and all members' tokens go through one dropless dispatch over the N*E experts
(`proxies.moe.dropless_swiglu`: one grouped GEMM on CUDA). Each member's expert slices
are then exactly those it has alone; its balance and z-losses, and the routing statistics
`train_proxy` reports, are its own.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mixer.domain import Domain
from mixer.errors import MixerError
from mixer.loader import DeviceTokens, LoaderConfig, MixtureLoader
from mixer.mixture import Mixture
from proxies.model import ProxyConfig, ProxyLM, apply_rope, parameter_counts
from proxies.moe import auxiliary_loss, dropless_swiglu, route
from proxies.presets import preset_config
from proxies.train import (CurvePoint, ProxyResult, TrainConfig, _autocast, expert_shares, held_out_windows, lr_at,
                           split_measured,
                           pick_device)


class StepCompile(str, Enum):
    """How a swarm's forward and loss run: `eager`; `inductor` (torch.compile, fusing the
    elementwise work between the matmuls); `cudagraphs` (inductor replayed as CUDA graphs,
    which also removes the kernel launches: for launch-bound small presets)."""

    eager = "eager"
    inductor = "inductor"
    cudagraphs = "cudagraphs"


class Swarm:
    """N stacked dense proxies: `params` name -> [N, ...] leaf tensors (the names and shapes
    of `ProxyLM`'s parameters with a leading member dim), run by `forward`."""

    def __init__(self, cfg: TrainConfig, vocab_size: int, seeds: Sequence[int], device: torch.device):
        self.cfg = preset_config(cfg.preset, vocab_size)
        if not self.cfg.tie_embeddings:
            raise MixerError(f"preset {cfg.preset} has untied embeddings: swarms batch tied presets only")
        models = []
        for seed in seeds:
            torch.manual_seed(seed)
            with device:  # initialised where it trains, as train_proxy does
                models.append(ProxyLM(self.cfg))
        self.params_per_member = parameter_counts(models[0])
        params, _ = torch.func.stack_module_state(models)
        self.params = {k: nn.Parameter(v.detach().clone()) for k, v in params.items()}
        self.rope = (models[0].rope_cos, models[0].rope_sin)
        self.size = len(seeds)

    def forward(self, tokens: torch.Tensor) -> SwarmOutput:
        """tokens [N, B, T] -> `SwarmOutput` (`swarm_forward`)."""
        return swarm_forward(self.params, *self.rope, tokens, self.cfg)

    def losses(self, tokens: torch.Tensor, compile_mode: StepCompile = StepCompile.eager) -> MemberLosses:
        """Every member's losses on its tokens [N, B, T + 1] (`MemberLosses`)."""
        return _member_losses_fn(compile_mode)(self.params, *self.rope, tokens, self.cfg)

    @torch.no_grad()
    def evaluate(self, windows: torch.Tensor, batch_size: int, device: torch.device
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every member over the same windows [n, T + 1]: mean token cross-entropy [N], and
        (MoE) its tokens' assignments per expert [N, E], summed over layers ([N, 0] dense)."""
        total = torch.zeros(self.size, device=device, dtype=torch.float64)
        assignments = torch.zeros(self.size, self.cfg.n_experts, device=device, dtype=torch.int64)
        count = 0
        for start in range(0, len(windows), batch_size):
            batch = windows[start:start + batch_size].to(device).expand(self.size, -1, -1)
            with _autocast(device):
                out = self.forward(batch[..., :-1])
            loss = F.cross_entropy(out.logits.float().flatten(0, 2), batch[..., 1:].flatten(), reduction="none")
            total += loss.view(self.size, -1).sum(dim=1).double()
            assignments += out.expert_counts.sum(dim=0)
            count += batch[0, :, 1:].numel()
        return total / count, assignments


class SwarmOutput(NamedTuple):
    """logits [N, B, T, vocab]; aux_loss [N], each member's MoE balance and z-losses summed
    over layers (zeros for a dense preset); expert_counts [L, N, E], the assignments per
    expert in each MoE layer ([0, N, 0] dense)."""

    logits: torch.Tensor
    aux_loss: torch.Tensor
    expert_counts: torch.Tensor


class MemberLosses(NamedTuple):
    """token: mean next-token loss [N] (what a run reports); aux: MoE auxiliary loss [N]
    (trained on, not reported); expert_counts [L, N, E] (`SwarmOutput`)."""

    token: torch.Tensor
    aux: torch.Tensor
    expert_counts: torch.Tensor


def swarm_forward(params: Mapping[str, torch.Tensor], rope_cos: torch.Tensor, rope_sin: torch.Tensor,
                  tokens: torch.Tensor, cfg: ProxyConfig) -> SwarmOutput:
    """tokens [N, B, T] -> `SwarmOutput`: `ProxyLM.forward` of every member, each matmul
    one batched matmul over the swarm. A plain function of tensors, so that one
    `torch.compile` of it serves every swarm of a process."""
    p, (n, b, t), d = params, tokens.shape, cfg.d_model
    heads = cfg.n_heads
    x = p["embed.weight"][torch.arange(n, device=tokens.device)[:, None, None], tokens]
    aux, counts = x.new_zeros(n, dtype=torch.float32), []
    for i in range(cfg.n_layers):
        block = f"blocks.{i}."
        h = _norm(x, p[block + "attn_norm.weight"])
        q, k, v = (_linear(h, p[block + "attn.qkv.weight"]).view(n * b, t, 3, heads, d // heads)
                   .permute(2, 0, 3, 1, 4))
        q, k = apply_rope(q, rope_cos, rope_sin), apply_rope(k, rope_cos, rope_sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(n, b, t, d)
        x = x + _linear(y, p[block + "attn.out.weight"])
        h = _norm(x, p[block + "mlp_norm.weight"])
        if cfg.is_moe:
            y, layer_aux, layer_counts = _experts(h, p, block + "mlp.", cfg)
            aux = aux + layer_aux
            counts.append(layer_counts)
        else:
            y = _swiglu(h, p, block + "mlp.")
        x = x + y
    logits = _linear(_norm(x, p["norm.weight"]), p["embed.weight"])
    expert_counts = torch.stack(counts) if counts else tokens.new_zeros(0, n, 0)
    return SwarmOutput(logits, aux, expert_counts)


def _swiglu(h: torch.Tensor, p: Mapping[str, torch.Tensor], prefix: str) -> torch.Tensor:
    """Each member's SwiGLU (`proxies.model.SwiGLU` under `prefix`) of h [N, ..., d]."""
    gate, up = _linear(h, p[prefix + "gate_up.weight"]).chunk(2, -1)
    return _linear(F.silu(gate) * up, p[prefix + "down.weight"])


def _experts(h: torch.Tensor, p: Mapping[str, torch.Tensor], prefix: str, cfg: ProxyConfig
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each member's `MoEFeedForward` (under `prefix`) of h [N, B, T, d] -> (y [N, B, T, d],
    auxiliary loss [N], assignments per expert [N, E]): one dispatch over the N*E experts,
    member i's numbered from i*E (module docstring)."""
    n, d, e = h.shape[0], h.shape[-1], cfg.n_experts
    flat = h.reshape(n, -1, d)                                                    # [N, M, d]
    logits = torch.bmm(flat, p[prefix + "router.weight"].transpose(1, 2)).float()  # [N, M, E]
    probs, weights, experts = route(logits, cfg.top_k)
    owned = experts + e * torch.arange(n, device=h.device).view(n, 1, 1)
    y, counts = dropless_swiglu(flat.reshape(-1, d), owned.reshape(-1, cfg.top_k),
                                weights.to(flat.dtype).reshape(-1, cfg.top_k),
                                p[prefix + "w_gate_up"].flatten(0, 1), p[prefix + "w_down"].flatten(0, 1))
    y = y.view_as(h)
    if cfg.n_shared_experts:
        y = y + _swiglu(h, p, prefix + "shared.")
    counts = counts.view(n, e)
    load = counts.float() / experts[0].numel()
    return y, auxiliary_loss(logits, probs, load, cfg.aux_loss_coef, cfg.z_loss_coef), counts


def _member_losses(params: Mapping[str, torch.Tensor], rope_cos: torch.Tensor, rope_sin: torch.Tensor,
                   tokens: torch.Tensor, cfg: ProxyConfig) -> MemberLosses:
    """Every member's losses (`MemberLosses`) on its tokens [N, B, T + 1]."""
    out = swarm_forward(params, rope_cos, rope_sin, tokens[..., :-1], cfg)
    per_token = F.cross_entropy(out.logits.float().flatten(0, 2), tokens[..., 1:].flatten(), reduction="none")
    return MemberLosses(per_token.view(tokens.shape[0], -1).mean(dim=1), out.aux_loss, out.expert_counts)


@functools.cache
def _member_losses_fn(mode: StepCompile):
    """`_member_losses`, compiled once per process and mode (its compile time is paid by
    the first swarm that uses it)."""
    if mode is StepCompile.eager:
        return _member_losses
    # dynamic=False: one specialised graph per swarm shape (a swarm's shape never changes).
    return torch.compile(_member_losses, mode="reduce-overhead" if mode is StepCompile.cudagraphs else None,
                         dynamic=False)


def _linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x [N, ..., in] times each member's weight [N, out, in] -> [N, ..., out] (one bmm)."""
    n, out = weight.shape[0], weight.shape[1]
    return torch.bmm(x.reshape(n, -1, x.shape[-1]), weight.transpose(1, 2)).view(*x.shape[:-1], out)


def _norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """RMSNorm of x [N, ..., d] with each member's weight [N, d]."""
    scale = weight.view(weight.shape[0], *([1] * (x.dim() - 2)), weight.shape[1])
    return F.rms_norm(x, (x.shape[-1],), eps=1e-6) * scale


COMPILE_MIN_STEPS = 500


def default_step_compile(device: torch.device, steps: int, moe: bool = False) -> StepCompile:
    """Measured on an H100 (benchmarks/swarm.py, bf16, 32 x 512 tokens per step): inductor
    cut a training step of a 1m swarm of 64 from 198 to 88 ms and of a 20m swarm of 16 from
    301 to 142 ms, but its first compile costs 17-48 s per process and shape. So: CUDA,
    runs of at least COMPILE_MIN_STEPS steps (about 60 s saved at 500). CUDA graphs on top
    gave -5% to +7%, and their private memory pools starved later swarms: not by default.
    On CPU a compiled tiny swarm gained 36% per step, but every worker process pays the
    compile again: eager. MoE swarms (a dispatch whose shapes depend on the routing) have
    not been measured compiled: eager."""
    if device.type == "cuda" and steps >= COMPILE_MIN_STEPS and not moe:
        return StepCompile.inductor
    return StepCompile.eager


def _stacked_optimizer(stacked: list[torch.Tensor], cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW as `proxies.train._optimizer`, on stacked tensors (one more leading dim): no
    weight decay on what is a vector per member (norm weights)."""
    groups = [{"params": [p for p in stacked if p.dim() >= 3], "weight_decay": cfg.weight_decay},
              {"params": [p for p in stacked if p.dim() < 3], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), fused=device.type == "cuda")


def clip_per_member(grads: list[torch.Tensor], max_norm: float) -> None:
    """Scale each member's gradients [N, ...] so that its own total norm is at most max_norm
    (as `clip_grad_norm_` does for one model)."""
    squares = sum(g.float().pow(2).flatten(1).sum(dim=1) for g in grads)
    scale = (max_norm / (squares.sqrt() + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.dim() - 1))).to(g.dtype))


@functools.cache
def _clip_fn(mode: StepCompile):
    """`clip_per_member`, fused into a few kernels when the step is compiled (eagerly it is
    four launches per parameter tensor)."""
    return clip_per_member if mode is StepCompile.eager else torch.compile(clip_per_member)


class SwarmStep:
    """One optimiser step of a swarm: forward and loss (compiled per `mode`), one backward
    over the summed losses (members share no parameter: each gets its own gradient),
    per-member clipping, AdamW over the stacked tensors."""

    def __init__(self, swarm: Swarm, cfg: TrainConfig, device: torch.device, mode: StepCompile):
        self.swarm, self.cfg, self.mode = swarm, cfg, mode
        self.stacked = list(swarm.params.values())
        self.optimizer = _stacked_optimizer(self.stacked, cfg, device)
        self._clip = _clip_fn(mode)

    def __call__(self, tokens: torch.Tensor, step: int) -> MemberLosses:
        """tokens [N, B, T + 1] -> each member's losses before the update (`MemberLosses`;
        `token` is what a run reports, `token + aux` what it trains on)."""
        with _autocast(tokens.device):
            losses = self.swarm.losses(tokens, self.mode)
        (losses.token + losses.aux).sum().backward()
        # clones: a CUDA graph's outputs are overwritten by its next replay
        losses = MemberLosses(*(t.detach().clone() for t in losses))
        self._clip([p.grad for p in self.stacked], self.cfg.grad_clip)
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(step, self.cfg)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return losses


def swarm_loaders(cfg: TrainConfig, domains: Mapping[str, Domain], members: Sequence[tuple[Mixture, int]],
                  device: torch.device) -> list[MixtureLoader]:
    """One MixtureLoader per member (its mixture and seed); on CUDA they share one device
    copy of the tokens, so a swarm holds the data once, not once per member."""
    shared = DeviceTokens.place(domains, device) if device.type == "cuda" else None
    return [MixtureLoader(domains, mixture, LoaderConfig(seq_len=cfg.seq_len, batch_size=cfg.batch_size, seed=seed,
                                                         device=str(device), total_steps=cfg.steps), tokens=shared)
            for mixture, seed in members]


def train_swarm(cfg: TrainConfig, domains: Mapping[str, Domain], members: Sequence[tuple[Mixture, int]],
                compile_mode: StepCompile | None = None,
                eval_sets: Mapping[str, np.ndarray] | None = None) -> list[ProxyResult]:
    """Train one proxy per (mixture, seed) of `members`, all with `cfg` otherwise; results
    in the members' order, each as `train_proxy` reports it. `compile_mode`: how the step
    runs (`StepCompile`; a first compile's time is part of the run); None:
    `default_step_compile`."""
    device = pick_device(cfg.device)
    torch.set_num_threads(cfg.threads or torch.get_num_threads())
    init_seeds = [seed if cfg.init_seed is None else cfg.init_seed for _, seed in members]
    swarm = Swarm(cfg, next(iter(domains.values())).meta.vocab_size, init_seeds, device)
    if compile_mode is None:
        compile_mode = default_step_compile(device, cfg.steps, swarm.cfg.is_moe)
    train_step = SwarmStep(swarm, cfg, device, compile_mode)
    loaders = swarm_loaders(cfg, domains, members, device)
    val_windows, curve_windows = held_out_windows(domains, cfg, eval_sets)
    eval_every = cfg.eval_every or max(1, cfg.steps // 10)
    results = [ProxyResult(status="done", params=swarm.params_per_member) for _ in members]
    moe = swarm.cfg.is_moe
    load_sum = torch.zeros(swarm.cfg.n_layers if moe else 0, len(members), swarm.cfg.n_experts, device=device)
    assignments_per_step = cfg.batch_size * cfg.seq_len * swarm.cfg.top_k
    start = time.perf_counter()
    for step in range(cfg.steps):  # at least one: a TrainConfig holds a batch
        losses = train_step(torch.stack([next(loader).tokens for loader in loaders]), step)
        loss = losses.token
        if moe:
            load_sum += losses.expert_counts / assignments_per_step
        if (step + 1) % eval_every == 0 and step + 1 < cfg.steps:
            _record_point(swarm, results, curve_windows, domains, cfg, device, step + 1, loss)
    elapsed = time.perf_counter() - start
    finals = {n: swarm.evaluate(w, cfg.batch_size, device) for n, w in val_windows.items()}
    for i, (result, loader) in enumerate(zip(results, loaders)):
        result.steps, result.tokens_trained = cfg.steps, cfg.steps * cfg.batch_size * cfg.seq_len
        # wall_s: the member's share of the swarm's training time, what the run cost the device
        # (searches price fidelities by it); tokens_per_s: the member's own rate
        result.wall_s, result.tokens_per_s = elapsed / len(members), result.tokens_trained / max(elapsed, 1e-9)
        result.epochs = loader.epochs()
        result.val_loss, result.eval_loss = split_measured({n: float(v[i]) for n, (v, _) in finals.items()}, domains)
        result.curve.append(CurvePoint(cfg.steps, result.tokens_trained, float(loss[i]), dict(result.val_loss),
                                       dict(result.eval_loss)))
        if result.status == "done" and not all(math.isfinite(v) for v in result.val_loss.values()):
            result.status, result.error = "failed", f"diverged by step {cfg.steps}: non-finite loss"
        if moe:  # as train_proxy reports them
            result.moe = {"expert_share": {n: expert_shares(counts[i]) for n, (_, counts) in finals.items()
                                           if n in domains},
                          "layer_load": (load_sum[:, i] / cfg.steps).tolist()}
    return results


def _record_point(swarm: Swarm, results: list[ProxyResult], windows: dict, domains, cfg: TrainConfig,
                  device: torch.device, step: int, loss: torch.Tensor) -> None:
    measured = {n: swarm.evaluate(w, cfg.batch_size, device)[0].tolist() for n, w in windows.items()}
    for i, result in enumerate(results):
        val, extra = split_measured({n: v[i] for n, v in measured.items()}, domains)
        point = CurvePoint(step, step * cfg.batch_size * cfg.seq_len, float(loss[i]), val, extra)
        if result.status == "done" and not np.isfinite([point.train_loss, *point.val.values()]).all():
            result.status, result.error = "failed", f"diverged by step {step}: non-finite loss"
        result.curve.append(point)
