"""What a search minimises (or maximises): one value computed from a run's final values.

Forms: `avg` (mean over domains), `NAME` (one domain's or metric's value), or a weighted
sum `a=0.7,b=0.3` (weights need not sum to 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mixer.config import parse_pairs
from mixer.errors import MixerError


@dataclass(frozen=True)
class Target:
    """The one place that knows the direction: backends minimise `loss(value)`; everything
    shown or stored is in the user's orientation (`value_of(loss)`)."""

    spec: str = "avg"
    maximize: bool = False

    def __post_init__(self):
        if not self.spec.strip():
            raise MixerError("empty --target")
        weights = self.weights
        if weights is not None and not any(weights.values()):
            raise MixerError(f"target '{self.spec}' weighs every metric 0: nothing to minimise")

    @property
    def weights(self) -> dict[str, float] | None:
        """Explicit weights, or None for `avg`."""
        if self.spec == "avg":
            return None
        if "=" not in self.spec:
            return {self.spec: 1.0}
        out = {}
        for name, value in parse_pairs(self.spec, "target", form="NAME=WEIGHT").items():
            try:
                out[name] = float(value)
            except ValueError:
                raise MixerError(f"bad target weight '{name}={value}': not a number") from None
            if not math.isfinite(out[name]):
                raise MixerError(f"bad target weight '{name}={value}': not a finite number")
        return out

    def check(self, available: Iterable[str]) -> None:
        """Fail early when the target names something no run will measure."""
        available = set(available)
        unknown = [n for n in (self.weights or {}) if n not in available]
        if unknown:
            raise MixerError(f"unknown target {', '.join(unknown)} (available: avg, "
                             f"{', '.join(sorted(available))})")

    def value(self, finals: Mapping[str, float], domains: Iterable[str] | None = None) -> float:
        """The target of a run from its final values; `avg` averages over `domains`
        (default: every value)."""
        weights = self.weights
        if weights is None:
            names = list(domains) if domains is not None else list(finals)
            return float(sum(finals[n] for n in names) / len(names))
        missing = [n for n in weights if n not in finals]
        if missing:
            raise MixerError(f"run has no value for target {', '.join(missing)}")
        return float(sum(w * finals[n] for n, w in weights.items()))

    def terms(self, domains: Iterable[str], finals: list[Mapping[str, float]]) -> dict[str, float]:
        """The target as {metric: coefficient} in minimise orientation, so that
        loss = sum(coefficient * value), for runs with final values `finals`: `avg` is the
        mean over the domains every run measured (as `value` computes it). Empty when the
        runs do not all measure the metrics."""
        weights = self.weights
        if weights is None:
            names = [d for d in domains if finals and all(d in f for f in finals)]
            weights = {d: 1.0 / len(names) for d in names}
        if not finals or any(n not in f for f in finals for n in weights):
            return {}
        return {n: float(self.loss(w)) for n, w in weights.items()}

    @property
    def direction(self) -> str:
        return "maximize" if self.maximize else "minimize"

    def loss(self, value):
        """What the backends minimise: the value, or its negative when maximising
        (a float or an array)."""
        return -value if self.maximize else value

    def value_of(self, loss):
        """Back to the user's orientation (the inverse of `loss`)."""
        return -loss if self.maximize else loss
