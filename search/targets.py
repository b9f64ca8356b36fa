"""What a search minimises (or maximises): one value computed from a run's final values
(`Target`, whose docstring lists the forms)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mixer.config import parse_pairs
from mixer.errors import MixerError


WORST = "worst"


@dataclass(frozen=True)
class Target:
    """The one place that knows the direction: backends minimise `loss(value)`; everything
    shown or stored is in the user's orientation (`value_of(loss)`).

    Forms of `spec`: `avg` (mean over the domains whose held-out split measures), `NAME` (a
    domain's, an eval-only set's or a table metric's value), `a=0.7,b=0.3` (a weighted sum;
    weights need not sum to 1), `worst` (the largest of those `avg` averages) or
    `worst:a,b,c` (the largest of the named losses: DoReMi's group-robust objective)."""

    spec: str = "avg"
    maximize: bool = False

    def __post_init__(self):
        if not self.spec.strip():
            raise MixerError("empty --target")
        if self.is_worst:
            if self.maximize:
                raise MixerError("--target worst is the largest loss, minimised; it cannot be maximised")
            if self.spec != WORST and not self.spec.startswith(WORST + ":"):
                raise MixerError(f"bad target '{self.spec}': use worst or worst:NAME,NAME")
            if self.spec.startswith(WORST + ":") and not self.worst_of:
                raise MixerError(f"target '{self.spec}' names no loss: use worst or worst:NAME,NAME")
            return
        weights = self.weights
        if weights is not None and not any(weights.values()):
            raise MixerError(f"target '{self.spec}' weighs every metric 0: nothing to minimise")

    @property
    def is_worst(self) -> bool:
        return self.spec.split(":", 1)[0] == WORST

    @property
    def worst_of(self) -> list[str] | None:
        """The losses `worst:a,b` names (None: every averaged domain's)."""
        if not self.spec.startswith(WORST + ":"):
            return None
        return [n.strip() for n in self.spec.split(":", 1)[1].split(",") if n.strip()]

    @property
    def weights(self) -> dict[str, float] | None:
        """Explicit weights of a weighted target, or None for `avg` and `worst`."""
        if self.spec == "avg" or self.is_worst:
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

    def names(self, averaged: Iterable[str]) -> list[str]:
        """The values the target combines; `averaged`: the domains `avg` (and `worst`) cover."""
        named = self.worst_of if self.is_worst else list(self.weights or {})
        return list(named) if named else list(averaged)

    def check(self, available: Iterable[str]) -> None:
        """Fail early when the target names something no run will measure."""
        available = set(available)
        unknown = [n for n in (self.worst_of or self.weights or {}) if n not in available]
        if unknown:
            raise MixerError(f"unknown target {', '.join(unknown)} (available: avg, worst, "
                             f"{', '.join(sorted(available))})")

    def value(self, finals: Mapping[str, float], averaged: Iterable[str] | None = None) -> float:
        """The target of a run from its final values; `avg` and `worst` cover `averaged`
        (default: every value)."""
        names = self.names(list(averaged) if averaged is not None else list(finals))
        missing = [n for n in names if n not in finals]
        if missing:
            raise MixerError(f"run has no value for target {', '.join(missing)}")
        if self.is_worst:
            return float(max(finals[n] for n in names))
        weights = self.weights or {n: 1.0 / len(names) for n in names}
        return float(sum(w * finals[n] for n, w in weights.items()))

    def terms(self, averaged: Iterable[str], finals: list[Mapping[str, float]]) -> dict[str, float]:
        """The target as {metric: coefficient} in minimise orientation, for runs with final
        values `finals`: loss = sum(coefficient * value), or for `worst` max(value) over the
        metrics (coefficients 1). `avg` covers the averaged domains every run measured (as
        `value` computes it). Empty when the runs do not all measure the metrics."""
        names = self.names([d for d in averaged if finals and all(d in f for f in finals)])
        if not names or not finals or any(n not in f for f in finals for n in names):
            return {}
        weights = self.weights or {n: 1.0 if self.is_worst else 1.0 / len(names) for n in names}
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
