"""Sampling candidate mixtures around a prior, as RegMix does.

Each sample draws a concentration `s` log-uniformly from [min_strength, max_strength] and a
Dirichlet(s * K * prior) vector, where K is the number of domains and prior is the token
share raised to `temperature` (0.5 flattens it towards uniform, 1 keeps it, 0 is uniform).
Small concentrations give sparse, extreme mixtures; large ones stay near the prior, so one
batch covers both edges and centre of the simplex. The default lowest concentration, 0.3,
was 0.1: on five domains with a token-share prior that put 0.6% of draws exactly on a
one-hot corner and 7.9% above 0.9 on one domain; 0.3 gives 0% and 1.1% while a draw still
has 0.12 zero weights on average (measured on 1e5 draws). Then:

- weights below `min_weight` are zeroed and the rest renormalised (RegMix's 0.001 grid);
- with a `token_budget`, no mixture repeats a domain more than `max_epochs` times
  (weight x budget <= max_epochs x the domain's tokens: a repetition cap, one of the
  weight bounds of mixer.bounds that every draw respects);
- a mixture within L1 distance `min_distance` of one already kept is rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mixer.bounds import WeightBounds
from mixer.errors import MixerError
from mixer.mixture import Mixture


@dataclass
class SamplerConfig:
    temperature: float = 0.5
    min_strength: float = 0.3
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


def repetition_caps(tokens: np.ndarray, token_budget: int | None, max_epochs: float) -> np.ndarray:
    """Largest weight per domain [K] so that no domain repeats more than `max_epochs` times
    within `token_budget` (no caps without a budget). Fails when no mixture can respect them."""
    if not token_budget:
        return np.full(len(tokens), np.inf)
    caps = max_epochs * np.asarray(tokens, dtype=np.float64) / token_budget
    if caps.sum() < 1.0:
        raise MixerError(f"a budget of {token_budget} tokens repeats these domains ({int(np.sum(tokens))} tokens) "
                         f"more than max_epochs {max_epochs:g} times whatever the mixture; "
                         "lower the token budget or raise max_epochs")
    return caps


REJECTION_ROUNDS = 8   # batches drawn before the draws still over an upper bound are projected instead


def draw_within_bounds(prior: np.ndarray, n: int, rng: np.random.Generator, cfg: SamplerConfig,
                       bounds: WeightBounds | None = None) -> np.ndarray:
    """n candidate mixtures [n, K] around `prior` [K] within `bounds` (mixer.bounds): the
    lower bounds' weight plus a Dirichlet draw of the mass they leave free, centred on the
    prior's share of it; draws over an upper bound are rejected, and after
    `REJECTION_ROUNDS` batches the rest are projected onto the bounds, so tight bounds
    never stall the sampler."""
    if n <= 0:
        return np.zeros((0, len(prior)))
    if bounds is None or not bounds.active:
        return dirichlet_candidates(prior, max(n, 64), rng, cfg)[:n]
    centre, mass = bounds.free_centre(prior)
    room = centre > 0
    kept, total = [np.zeros((0, len(prior)))], 0
    for attempt in range(REJECTION_ROUNDS + 1):
        batch = np.tile(bounds.lower, (max(n - total, 64), 1))
        batch[:, room] += mass * dirichlet_candidates(centre[room] / centre[room].sum(), len(batch), rng, cfg)
        within = bounds.contains(batch, tol=1e-12)
        kept.append(batch[within] if attempt < REJECTION_ROUNDS else bounds.project(batch))
        total += len(kept[-1])
        if total >= n:
            break
    return np.concatenate(kept)[:n]


def sample_mixtures(tokens: Mapping[str, int], n: int, seed: int, cfg: SamplerConfig | None = None
                    ) -> list[Mixture]:
    """n mixtures over the domains of `tokens` (name -> token count), pairwise at least
    `min_distance` apart in L1."""
    cfg = cfg or SamplerConfig()
    names = list(tokens)
    prior = np.array(list(prior_from_tokens(tokens, cfg.temperature).values()))
    caps = repetition_caps(np.array([float(tokens[k]) for k in names]), cfg.token_budget, cfg.max_epochs)
    bounds = WeightBounds.of(names, caps=caps)
    rng = np.random.default_rng(seed)
    kept: list[np.ndarray] = []
    for _ in range(cfg.max_draws_per_sample):
        for x in draw_within_bounds(prior, max(64, 2 * (n - len(kept))), rng, cfg, bounds):
            if not kept or np.abs(np.asarray(kept) - x).sum(axis=1).min() >= cfg.min_distance:
                kept.append(x)
            if len(kept) == n:
                return [Mixture(dict(zip(names, x))) for x in kept]
    raise MixerError(f"only {len(kept)} of {n} mixtures are at least min_distance={cfg.min_distance:g} apart; "
                     "lower min_distance")
