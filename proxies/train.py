"""train_proxy: one proxy model trained on one mixture, measured on every domain.

The loop is deliberately plain (nanoGPT-style): AdamW, warmup then constant (RegMix) or
cosine decay, gradient clipping, bf16 autocast on CUDA. Every `eval_every` steps it
records the training loss and each domain's held-out loss; at the end, the final
per-domain losses, throughput, parameter counts and, for MoE, routing statistics.
A NaN or infinite loss stops the run: it is reported as failed, never as a number.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mixer.domain import Domain
from mixer.errors import MixerError
from mixer.loader import LoaderConfig, MixtureLoader
from mixer.mixture import Mixture, Schedule
from mixer.online import OnlineController
from proxies.config import CurvePoint, LRSchedule, ProxyResult, TrainConfig
from proxies.model import ProxyLM, parameter_counts
from proxies.presets import preset_config


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_at(step: int, cfg: TrainConfig) -> float:
    warmup = max(1, int(cfg.warmup_frac * cfg.steps))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    if cfg.lr_schedule is LRSchedule.constant:
        return cfg.lr
    progress = (step - warmup) / max(1, cfg.steps - warmup)
    floor = cfg.lr * cfg.min_lr_frac
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * progress))


def _optimizer(model: ProxyLM, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), fused=device.type == "cuda")


def _windows(tokens: np.ndarray, seq_len: int, max_tokens: int) -> torch.Tensor:
    """Non-overlapping evaluation windows [n, seq_len + 1] from a token array; a held-out
    split shorter than one window is evaluated as one shorter window."""
    if len(tokens) < 2:
        raise MixerError("a domain's held-out split has fewer than 2 tokens; re-ingest it")
    seq_len = min(seq_len, len(tokens) - 1)
    n = min(len(tokens) - 1, max_tokens) // seq_len
    idx = np.arange(n)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
    return torch.from_numpy(np.asarray(tokens)[idx].astype(np.int64))


def held_out_windows(domains: Mapping[str, Domain], cfg: TrainConfig,
                     eval_sets: Mapping[str, np.ndarray] | None = None) -> tuple[dict, dict]:
    """The evaluation windows of each domain's held-out split and of each eval-only set's
    tokens (`eval_sets`, name -> tokens), by name: the final measurement's (up to
    `eval_tokens`) and the curve's, a fixed leading slice of those (`curve_eval_tokens`),
    so every point of a curve and every run is measured on the same tokens."""
    texts = {**{n: d.val_tokens for n, d in domains.items()}, **(eval_sets or {})}
    final = {n: _windows(t, cfg.seq_len, cfg.eval_tokens) for n, t in texts.items()}
    return final, {n: w[:max(1, cfg.curve_eval_tokens // cfg.seq_len)] for n, w in final.items()}


def split_measured(losses: Mapping[str, float], domains) -> tuple[dict, dict]:
    """Losses by name -> (the domains', the eval-only sets')."""
    return ({n: v for n, v in losses.items() if n in domains}, {n: v for n, v in losses.items() if n not in domains})


@torch.no_grad()
def evaluate(model: ProxyLM, windows: torch.Tensor, batch_size: int, device: torch.device
             ) -> tuple[float, list]:
    """Mean token cross-entropy over the windows, and the MoE routing of each batch."""
    model.eval()
    total, count, routing = 0.0, 0, []
    for start in range(0, len(windows), batch_size):
        batch = windows[start:start + batch_size].to(device)
        with _autocast(device):
            logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten(), reduction="sum")
        total += float(loss)
        count += batch[:, 1:].numel()
        routing.append([r.expert_index.cpu() for r in model.routing_stats()])
    model.train()
    return (total / count if count else float("nan")), routing


def _autocast(device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _expert_shares(routing: list, n_experts: int) -> list[float]:
    """Share of a domain's token-expert assignments per expert, averaged over layers."""
    counts = torch.zeros(n_experts)
    for per_layer in routing:
        for experts in per_layer:
            counts += torch.bincount(experts.flatten(), minlength=n_experts).float()
    return expert_shares(counts)


def expert_shares(counts: torch.Tensor) -> list[float]:
    """Assignments per expert [E] as shares of their sum ([] when there were none)."""
    counts = counts.float().cpu()
    return (counts / counts.sum()).tolist() if counts.sum() > 0 else []


class _ThroughputClock:
    """Seconds spent in training steps after warm-up, evaluations excluded. Synchronises the
    GPU only where timing starts, pauses or resumes, never per step."""

    def __init__(self, device: torch.device, warmup_steps: int):
        self.device, self.warmup = device, warmup_steps
        self.steps, self._elapsed, self._since = 0, 0.0, None

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def step_begins(self, step: int) -> None:
        if step == self.warmup:
            self._since = self._now()

    def step_ends(self, step: int) -> None:
        if step >= self.warmup:
            self.steps += 1

    def pause(self) -> None:
        if self._since is not None:
            self._elapsed += self._now() - self._since
            self._since = None

    def resume(self, next_step: int) -> None:
        if next_step > self.warmup:
            self._since = self._now()

    def seconds(self) -> float:
        self.pause()
        return self._elapsed


def _train_step(model: ProxyLM, optimizer: torch.optim.Optimizer, batch, cfg: TrainConfig, step: int,
                device: torch.device) -> torch.Tensor:
    """One optimiser step; returns the mean loss."""
    for group in optimizer.param_groups:
        group["lr"] = lr_at(step, cfg)
    with _autocast(device):
        logits = model(batch.inputs)
    loss = F.cross_entropy(logits.float().flatten(0, 1), batch.targets.flatten())
    (loss + model.aux_loss()).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


def _curve_point(model: ProxyLM, windows: dict, domains, cfg: TrainConfig, device: torch.device, tokens: int,
                 loss: torch.Tensor, step: int) -> CurvePoint:
    val, extra = split_measured({n: evaluate(model, w, cfg.batch_size, device)[0] for n, w in windows.items()},
                                domains)
    return CurvePoint(step + 1, tokens, loss.item(), val, extra)


def train_proxy(cfg: TrainConfig, domains: Mapping[str, Domain], mixture: Mixture | Schedule,
                eval_sets: Mapping[str, np.ndarray] | None = None,
                controller: OnlineController | None = None) -> ProxyResult:
    """Train one proxy (module docstring); every domain is measured, the mixture trains, and
    so is every eval-only set of `eval_sets` (name -> tokens), along the curve and at the end.
    With an online `controller` (mixer.online), the mixture is the controller's: it is told
    every domain's held-out loss (on the curve's fixed slice, or the whole held-out split
    when it asks for `full_held_out`) at the steps it asks for, and
    its report lands in `result.online`; `mixture` is then ignored."""
    device = pick_device(cfg.device)
    torch.set_num_threads(cfg.threads or torch.get_num_threads())
    torch.manual_seed(cfg.seed if cfg.init_seed is None else cfg.init_seed)
    with device:  # initialised on the device: a 20m model's CPU init costs more than its first steps
        model = ProxyLM(preset_config(cfg.preset, next(iter(domains.values())).meta.vocab_size))
    optimizer, moe_layers = _optimizer(model, cfg, device), model.moe_layers()
    mixture = controller.mixture if controller is not None else mixture
    loader = MixtureLoader(domains, mixture, LoaderConfig(
        seq_len=cfg.seq_len, batch_size=cfg.batch_size, seed=cfg.seed, device=str(device), total_steps=cfg.steps))
    val_windows, curve_windows = held_out_windows(domains, cfg, eval_sets)
    eval_every = cfg.eval_every or max(1, cfg.steps // 10)
    result = ProxyResult(status="done", params=parameter_counts(model))
    load_sum = torch.zeros(len(moe_layers), model.cfg.n_experts or 1, device=device)
    clock = _ThroughputClock(device, warmup_steps=2 if cfg.steps > 4 else 0)
    wall_start = time.perf_counter()

    for step in range(cfg.steps):
        if controller is not None and controller.wants(step):  # its measurements count in the throughput
            windows = val_windows if controller.full_held_out else curve_windows
            new = controller.observe(step, {n: evaluate(model, w, cfg.batch_size, device)[0]
                                            for n, w in windows.items() if n in controller.measured})
            if new is not None:
                loader.set_mixture(new)
        clock.step_begins(step)
        batch = next(loader)
        loss = _train_step(model, optimizer, batch, cfg, step, device)
        for i, layer in enumerate(moe_layers):
            load_sum[i] += layer.last_routing.load
        if (device.type == "cpu" or (step + 1) % eval_every == 0) and not math.isfinite(loss.item()):  # no GPU sync
            result.status, result.error = "failed", f"diverged at step {step + 1}: loss is {loss.item()}"
            break
        clock.step_ends(step)
        result.steps, result.tokens_trained = step + 1, (step + 1) * cfg.batch_size * cfg.seq_len
        if (step + 1) % eval_every == 0 and step + 1 < cfg.steps:  # the last point is the final measurement
            clock.pause()
            result.curve.append(_curve_point(model, curve_windows, domains, cfg, device, result.tokens_trained, loss,
                                             step))
            clock.resume(step + 1)
            if not all(math.isfinite(v) for v in result.curve[-1].val.values()):
                result.status, result.error = "failed", f"diverged by step {step + 1}: non-finite loss"
                break

    result.wall_s = time.perf_counter() - wall_start
    result.tokens_per_s = clock.steps * cfg.batch_size * cfg.seq_len / clock.seconds() if clock.steps else 0.0
    result.epochs = loader.epochs()
    if result.status == "done":
        _final_measurements(model, cfg, device, val_windows, domains, result)
        result.curve.append(CurvePoint(result.steps, result.tokens_trained, loss.item(), dict(result.val_loss),
                                       dict(result.eval_loss)))
        if not all(math.isfinite(v) for v in result.val_loss.values()):
            result.status, result.error = "failed", f"diverged by step {result.steps}: non-finite loss"
        if moe_layers:
            result.moe["layer_load"] = (load_sum / max(1, result.steps)).tolist()
    if controller is not None:
        result.online = controller.report()
    return result


def train_on_tokens(cfg: TrainConfig, tokens: np.ndarray, vocab_size: int) -> ProxyLM:
    """Train a proxy on random windows of one token stream (`tokens` [n], n > seq_len)
    and return it in eval mode: a learned embedder (mixer.clustering), not a mixture run."""
    if len(tokens) <= cfg.seq_len + 1:
        raise MixerError(f"{len(tokens)} tokens are too few to train on (more than {cfg.seq_len + 1} needed)")
    device = pick_device(cfg.device)
    torch.set_num_threads(cfg.threads or torch.get_num_threads())
    torch.manual_seed(cfg.seed)
    with device:
        model = ProxyLM(preset_config(cfg.preset, vocab_size))
    optimizer = _optimizer(model, cfg, device)
    stream = torch.from_numpy(np.asarray(tokens, dtype=np.int64))
    rng = np.random.default_rng(cfg.seed)
    offsets = np.arange(cfg.seq_len + 1)
    for step in range(cfg.steps):
        starts = rng.integers(0, len(stream) - cfg.seq_len - 1, size=cfg.batch_size)
        windows = stream[starts[:, None] + offsets[None, :]].to(device)
        _train_step(model, optimizer, _Batch(windows[:, :-1], windows[:, 1:]), cfg, step, device)
    return model.eval()


@dataclass
class _Batch:
    inputs: torch.Tensor
    targets: torch.Tensor


def _final_measurements(model: ProxyLM, cfg: TrainConfig, device: torch.device, windows_by_name: dict,
                        domains, result: ProxyResult) -> None:
    shares = {}
    for name, windows in windows_by_name.items():
        loss, routing = evaluate(model, windows, cfg.batch_size, device)
        if name not in domains:
            result.eval_loss[name] = loss
            continue
        result.val_loss[name] = loss
        if model.cfg.is_moe:
            shares[name] = _expert_shares(routing, model.cfg.n_experts)
    if model.cfg.is_moe:
        result.moe = {"expert_share": shares}
