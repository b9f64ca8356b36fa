"""Sampling candidate mixtures around a prior, as RegMix does.

Each sample draws a concentration `s` log-uniformly from [min_strength, max_strength] and a
Dirichlet(s * K * prior) vector, where K is the number of domains and prior is the token
share raised to `temperature` (0.5 flattens it towards uniform, 1 keeps it, 0 is uniform).
Small concentrations give sparse, extreme mixtures; large ones stay near the prior, so one
batch covers both corners and centre of the simplex. Then:

- weights below `min_weight` are zeroed and the rest renormalised (RegMix's 0.001 grid);
- with a `token_budget`, a mixture that would repeat a domain more than `max_epochs` times
  (weight x budget > max_epochs x the domain's tokens) is rejected;
- a mixture within L1 distance `min_distance` of one already kept is rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mixer.errors import MixerError
from mixer.mixture import Mixture


@dataclass
class SamplerConfig:
    temperature: float = 0.5
    min_strength: float = 0.1
    max_strength: float = 5.0
    min_weight: float = 1e-3
    token_budget: int | None = None
    max_epochs: float = 4.0
    min_distance: float = 1e-3
    max_draws_per_sample: int = 200

    def __post_init__(self):
        if not 0 < self.min_strength <= self.max_strength:
            raise MixerError("need 0 < min_strength <= max_strength")
        if self.temperature < 0:
            raise MixerError("temperature must be >= 0")


def prior_from_tokens(tokens: Mapping[str, int], temperature: float = 1.0) -> dict[str, float]:
    shares = np.array([float(v) for v in tokens.values()])
    if (shares <= 0).any():
        raise MixerError("every domain needs a positive token count")
    p = (shares / shares.sum()) ** temperature
    return dict(zip(tokens, p / p.sum()))


def dirichlet_candidates(prior: np.ndarray, n: int, rng: np.random.Generator, cfg: SamplerConfig) -> np.ndarray:
    """n raw candidate mixtures, float64 [n, K] (before caps and de-duplication)."""
    k = len(prior)
    strength = np.exp(rng.uniform(np.log(cfg.min_strength), np.log(cfg.max_strength), size=n))
    alpha = np.maximum(strength[:, None] * k * prior[None, :], 1e-6)
    x = rng.gamma(alpha)
    x /= np.maximum(x.sum(axis=1, keepdims=True), 1e-300)
    x[x < cfg.min_weight] = 0.0
    empty = x.sum(axis=1) == 0
    x[empty, np.argmax(prior)] = 1.0
    return x / x.sum(axis=1, keepdims=True)


def sample_mixtures(tokens: Mapping[str, int], n: int, seed: int, cfg: SamplerConfig | None = None
                    ) -> list[Mixture]:
    """n distinct mixtures over the domains of `tokens` (name -> token count)."""
    cfg = cfg or SamplerConfig()
    names = list(tokens)
    counts = np.array([float(tokens[k]) for k in names])
    prior = np.array(list(prior_from_tokens(tokens, cfg.temperature).values()))
    cap = (cfg.max_epochs * counts / cfg.token_budget) if cfg.token_budget else np.full(len(names), np.inf)
    if cap.sum() < 1.0:
        raise MixerError(f"a budget of {cfg.token_budget} tokens repeats the data more than "
                         f"{cfg.max_epochs:g} times whatever the mixture; lower the budget or raise max_epochs")
    rng = np.random.default_rng(seed)
    kept: list[np.ndarray] = []
    draws = 0
    while len(kept) < n:
        if draws > n * cfg.max_draws_per_sample:
            raise MixerError(f"only {len(kept)} of {n} mixtures satisfy the caps and distance; "
                             "relax max_epochs or min_distance")
        batch = dirichlet_candidates(prior, max(64, 2 * (n - len(kept))), rng, cfg)
        draws += len(batch)
        batch = batch[(batch <= cap[None, :] + 1e-12).all(axis=1)]
        for x in batch:
            if kept and np.abs(np.asarray(kept) - x).sum(axis=1).min() < cfg.min_distance:
                continue
            kept.append(x)
            if len(kept) == n:
                break
    return [Mixture(dict(zip(names, x))) for x in kept]
