"""Comparing mixtures measured with several seeds: is the recommendation's win larger than
seed noise?

Replicates are paired: replicate k of every mixture uses the same seed (initialisation and
data order), so the difference between two mixtures at one seed is free of that seed's
luck. A win counts when the mean paired gain is larger than the std of the paired gains
(with unpaired values, the pooled std of the two mixtures). With 3 seeds this is a plain
effect-size rule (a t statistic above sqrt(3)), not a test at a chosen level; the table
shows the numbers it rests on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from search.targets import Target


@dataclass(frozen=True)
class SeedStats:
    """A mixture's target over replicate seeds (values in the user's orientation)."""

    label: str
    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else float("nan")


@dataclass(frozen=True)
class Verdict:
    baseline: str
    gain: float          # how much better the recommendation's mean is (positive: better)
    seed_std: float      # std of the paired gains (unpaired: pooled std of the two mixtures)
    significant: bool    # gain > seed_std
    same_mixture: bool = False  # the recommendation is the baseline's mixture

    def sentence(self) -> str:
        if self.same_mixture:
            return f"is the {self.baseline} mixture itself: no run of the search beat it by more than the runs' noise"
        if self.significant:
            return (f"beats {self.baseline} by {self.gain:.4f}, more than the std of the per-seed differences "
                    f"{self.seed_std:.4f}")
        if self.gain > 0:
            return (f"is better than {self.baseline} by {self.gain:.4f}, which is NOT larger than the std of the "
                    f"per-seed differences {self.seed_std:.4f}: not a significant win")
        return f"does NOT beat {self.baseline} ({-self.gain:.4f} worse; std of the per-seed differences " \
               f"{self.seed_std:.4f})"


def verdict(recommended: SeedStats, baseline: SeedStats, target: Target = Target(), paired: bool = True,
            same_mixture: bool = False) -> Verdict:
    """The recommendation against a baseline (values in `target`'s user orientation);
    `paired`: their values are replicate k against replicate k (the same seeds);
    `same_mixture`: the two are one mixture."""
    loss = target.loss
    if paired and len(recommended.values) == len(baseline.values) > 1:
        gains = loss(np.array(baseline.values)) - loss(np.array(recommended.values))
        gain, seed_std = float(gains.mean()), float(gains.std(ddof=1))
    else:
        gain = float(loss(baseline.mean) - loss(recommended.mean))
        seed_std = float(np.sqrt((recommended.std ** 2 + baseline.std ** 2) / 2))
    return Verdict(baseline.label, gain, seed_std, bool(gain > seed_std) and not same_mixture, same_mixture)
