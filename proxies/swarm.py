"""Swarm training: N dense proxies of one preset on N mixtures as one batched computation.

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

So a member's losses equal those of `train_proxy` with the same config and seed, to float
tolerance (tests/proxies/test_swarm.py). A member that diverges is marked failed; the
others go on.

MoE presets are not batched: their token dispatch (top-k routing, then gathering each
expert's tokens) has data-dependent shapes, which `vmap` cannot batch; they run one at a
time (`train_proxy`).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping, Sequence
from enum import Enum

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mixer.domain import Domain
from mixer.errors import MixerError
from mixer.loader import DeviceTokens, LoaderConfig, MixtureLoader
from mixer.mixture import Mixture
from proxies.model import ProxyConfig, ProxyLM, apply_rope, parameter_counts
from proxies.presets import preset_config
from proxies.train import CurvePoint, ProxyResult, TrainConfig, _autocast, held_out_windows, lr_at, pick_device


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
        if self.cfg.is_moe:
            raise MixerError(f"preset {cfg.preset} is a mixture of experts: swarms batch dense presets only")
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

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [N, B, T] -> logits [N, B, T, vocab] (`swarm_forward`)."""
        return swarm_forward(self.params, *self.rope, tokens, self.cfg)

    def losses(self, tokens: torch.Tensor, compile_mode: StepCompile = StepCompile.eager) -> torch.Tensor:
        """Mean next-token loss [N] of every member on its tokens [N, B, T + 1]."""
        return _member_losses_fn(compile_mode)(self.params, *self.rope, tokens, self.cfg)

    @torch.no_grad()
    def evaluate(self, windows: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
        """Mean token cross-entropy [N] of every member over the same windows [n, T + 1]."""
        total = torch.zeros(self.size, device=device, dtype=torch.float64)
        count = 0
        for start in range(0, len(windows), batch_size):
            batch = windows[start:start + batch_size].to(device).expand(self.size, -1, -1)
            with _autocast(device):
                logits = self.forward(batch[..., :-1])
            loss = F.cross_entropy(logits.float().flatten(0, 2), batch[..., 1:].flatten(), reduction="none")
            total += loss.view(self.size, -1).sum(dim=1).double()
            count += batch[0, :, 1:].numel()
        return total / count


def swarm_forward(params: Mapping[str, torch.Tensor], rope_cos: torch.Tensor, rope_sin: torch.Tensor,
                  tokens: torch.Tensor, cfg: ProxyConfig) -> torch.Tensor:
    """tokens [N, B, T] -> logits [N, B, T, vocab]: `ProxyLM.forward` of every member, each
    matmul one batched matmul over the swarm. A plain function of tensors, so that one
    `torch.compile` of it serves every swarm of a process."""
    p, (n, b, t), d = params, tokens.shape, cfg.d_model
    heads = cfg.n_heads
    x = p["embed.weight"][torch.arange(n, device=tokens.device)[:, None, None], tokens]
    for i in range(cfg.n_layers):
        block = f"blocks.{i}."
        h = _norm(x, p[block + "attn_norm.weight"])
        q, k, v = (_linear(h, p[block + "attn.qkv.weight"]).view(n * b, t, 3, heads, d // heads)
                   .permute(2, 0, 3, 1, 4))
        q, k = apply_rope(q, rope_cos, rope_sin), apply_rope(k, rope_cos, rope_sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(n, b, t, d)
        x = x + _linear(y, p[block + "attn.out.weight"])
        gate, up = _linear(_norm(x, p[block + "mlp_norm.weight"]), p[block + "mlp.gate_up.weight"]).chunk(2, -1)
        x = x + _linear(F.silu(gate) * up, p[block + "mlp.down.weight"])
    return _linear(_norm(x, p["norm.weight"]), p["embed.weight"])


def _member_losses(params: Mapping[str, torch.Tensor], rope_cos: torch.Tensor, rope_sin: torch.Tensor,
                   tokens: torch.Tensor, cfg: ProxyConfig) -> torch.Tensor:
    """Mean next-token loss [N] of every member on its tokens [N, B, T + 1]."""
    logits = swarm_forward(params, rope_cos, rope_sin, tokens[..., :-1], cfg)
    per_token = F.cross_entropy(logits.float().flatten(0, 2), tokens[..., 1:].flatten(), reduction="none")
    return per_token.view(tokens.shape[0], -1).mean(dim=1)


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


def default_step_compile(device: torch.device, steps: int) -> StepCompile:
    """Measured on an H100 (benchmarks/swarm.py, bf16, 32 x 512 tokens per step): inductor
    cut a training step of a 1m swarm of 64 from 198 to 88 ms and of a 20m swarm of 16 from
    301 to 142 ms, but its first compile costs 17-48 s per process and shape. So: CUDA,
    runs of at least COMPILE_MIN_STEPS steps (about 60 s saved at 500). CUDA graphs on top
    gave -5% to +7%, and their private memory pools starved later swarms: not by default.
    On CPU a compiled tiny swarm gained 36% per step, but every worker process pays the
    compile again: eager."""
    if device.type == "cuda" and steps >= COMPILE_MIN_STEPS:
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

    def __call__(self, tokens: torch.Tensor, step: int) -> torch.Tensor:
        """tokens [N, B, T + 1] -> each member's training loss [N] before the update."""
        with _autocast(tokens.device):
            member_losses = self.swarm.losses(tokens, self.mode)
        member_losses.sum().backward()
        loss = member_losses.detach().clone()  # a CUDA graph's output is overwritten by its next replay
        self._clip([p.grad for p in self.stacked], self.cfg.grad_clip)
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(step, self.cfg)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss


def swarm_loaders(cfg: TrainConfig, domains: Mapping[str, Domain], members: Sequence[tuple[Mixture, int]],
                  device: torch.device) -> list[MixtureLoader]:
    """One MixtureLoader per member (its mixture and seed); on CUDA they share one device
    copy of the tokens, so a swarm holds the data once, not once per member."""
    shared = DeviceTokens.place(domains, device) if device.type == "cuda" else None
    return [MixtureLoader(domains, mixture, LoaderConfig(seq_len=cfg.seq_len, batch_size=cfg.batch_size, seed=seed,
                                                         device=str(device), total_steps=cfg.steps), tokens=shared)
            for mixture, seed in members]


def train_swarm(cfg: TrainConfig, domains: Mapping[str, Domain], members: Sequence[tuple[Mixture, int]],
                compile_mode: StepCompile | None = None) -> list[ProxyResult]:
    """Train one proxy per (mixture, seed) of `members`, all with `cfg` otherwise; results
    in the members' order, each as `train_proxy` reports it. `compile_mode`: how the step
    runs (`StepCompile`; a first compile's time is part of the run); None:
    `default_step_compile`."""
    device = pick_device(cfg.device)
    torch.set_num_threads(cfg.threads or torch.get_num_threads())
    init_seeds = [seed if cfg.init_seed is None else cfg.init_seed for _, seed in members]
    swarm = Swarm(cfg, next(iter(domains.values())).meta.vocab_size, init_seeds, device)
    if compile_mode is None:
        compile_mode = default_step_compile(device, cfg.steps)
    train_step = SwarmStep(swarm, cfg, device, compile_mode)
    loaders = swarm_loaders(cfg, domains, members, device)
    val_windows, curve_windows = held_out_windows(domains, cfg)
    eval_every = cfg.eval_every or max(1, cfg.steps // 10)
    results = [ProxyResult(status="done", params=swarm.params_per_member) for _ in members]
    start = time.perf_counter()
    loss = torch.zeros(len(members))
    for step in range(cfg.steps):
        loss = train_step(torch.stack([next(loader).tokens for loader in loaders]), step)
        if (step + 1) % eval_every == 0 and step + 1 < cfg.steps:
            _record_point(swarm, results, curve_windows, cfg, device, step + 1, loss)
    elapsed = time.perf_counter() - start
    finals = {n: swarm.evaluate(w, cfg.batch_size, device).tolist() for n, w in val_windows.items()}
    for i, (result, loader) in enumerate(zip(results, loaders)):
        result.steps, result.tokens_trained = cfg.steps, cfg.steps * cfg.batch_size * cfg.seq_len
        # wall_s: the member's share of the swarm's training time, what the run cost the device
        # (searches price fidelities by it); tokens_per_s: the member's own rate
        result.wall_s, result.tokens_per_s = elapsed / len(members), result.tokens_trained / max(elapsed, 1e-9)
        result.epochs = loader.epochs()
        result.val_loss = {n: float(v[i]) for n, v in finals.items()}
        result.curve.append(CurvePoint(cfg.steps, result.tokens_trained, float(loss[i]), dict(result.val_loss)))
        if result.status == "done" and not all(math.isfinite(v) for v in result.val_loss.values()):
            result.status, result.error = "failed", f"diverged by step {cfg.steps}: non-finite loss"
    return results


def _record_point(swarm: Swarm, results: list[ProxyResult], windows: dict, cfg: TrainConfig,
                  device: torch.device, step: int, loss: torch.Tensor) -> None:
    val = {n: swarm.evaluate(w, cfg.batch_size, device).tolist() for n, w in windows.items()}
    for i, result in enumerate(results):
        point = CurvePoint(step, step * cfg.batch_size * cfg.seq_len, float(loss[i]), {n: v[i] for n, v in val.items()})
        if result.status == "done" and not np.isfinite([point.train_loss, *point.val.values()]).all():
            result.status, result.error = "failed", f"diverged by step {step}: non-finite loss"
        result.curve.append(point)
