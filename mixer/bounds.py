"""Bounds on a mixture's weights: the user's `--min`, `--max` and `--fix` combined with the
repetition caps, as one box [lower, upper] intersected with the simplex.

Everything that makes a mixture asks this one object: the sampler draws inside it (a
Dirichlet over the mass the lower bounds leave free, rejecting draws over an upper
bound, and projecting when rejection alone would take too long), the convex programs add
its two vectors as linear constraints, and baselines are projected onto it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mixer.errors import MixerError

TOLERANCE = 1e-9


@dataclass(frozen=True)
class WeightConstraints:
    """What the user asked for, by domain name (each weight in [0, 1])."""

    minimum: dict[str, float] = field(default_factory=dict)
    maximum: dict[str, float] = field(default_factory=dict)
    fixed: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        for flag, values in (("--min", self.minimum), ("--max", self.maximum), ("--fix", self.fixed)):
            for name, weight in values.items():
                if not 0.0 <= float(weight) <= 1.0:
                    raise MixerError(f"{flag} {name}={weight}: a weight must be between 0 and 1")
        both = sorted(set(self.fixed) & (set(self.minimum) | set(self.maximum)))
        if both:
            raise MixerError(f"--fix {both[0]} and --min/--max {both[0]}: a fixed weight takes no other bound")

    def __bool__(self) -> bool:
        return bool(self.minimum or self.maximum or self.fixed)

    def names(self) -> set[str]:
        return set(self.minimum) | set(self.maximum) | set(self.fixed)


@dataclass(frozen=True)
class WeightBounds:
    """lower, upper: float [D], 0 <= lower <= upper, sum(lower) <= 1 <= sum(upper);
    upper_source: which flag set each upper bound (for the messages and `mixer best`)."""

    domains: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    upper_source: tuple[str, ...] = ()

    @classmethod
    def of(cls, domains: list[str], constraints: WeightConstraints = WeightConstraints(),
           caps: np.ndarray | None = None) -> "WeightBounds":
        """The box of `constraints` within the repetition `caps` [D]; infeasible requests fail
        in one line naming the flags."""
        unknown = sorted(constraints.names() - set(domains))
        if unknown:
            raise MixerError(f"--min/--max/--fix name {', '.join(unknown)}, not a domain of the search "
                             f"({', '.join(domains)})")
        D = len(domains)
        lower, upper, source = np.zeros(D), np.ones(D), [""] * D
        for d, name in enumerate(domains):
            if caps is not None and caps[d] < 1.0:
                upper[d], source[d] = caps[d], "repetition cap (--max-epochs)"
            if name in constraints.maximum and constraints.maximum[name] < upper[d]:
                upper[d], source[d] = constraints.maximum[name], "--max"
            if name in constraints.minimum:
                lower[d] = constraints.minimum[name]
            if name in constraints.fixed:
                weight = constraints.fixed[name]
                if weight > upper[d] + TOLERANCE:
                    raise MixerError(f"--fix {name}={weight:g} is above its {source[d]} of {upper[d]:.3g}")
                lower[d] = upper[d] = weight
                source[d] = "--fix"
            if lower[d] > upper[d] + TOLERANCE:
                raise MixerError(f"--min {name}={lower[d]:g} is above its {source[d]} of {upper[d]:.3g}")
        if lower.sum() > 1.0 + TOLERANCE:
            raise MixerError(f"the --min and --fix weights sum to {lower.sum():.3g} > 1: no mixture meets them")
        if upper.sum() < 1.0 - TOLERANCE:
            raise MixerError(f"the --max, --fix and repetition caps allow {upper.sum():.3g} in all < 1: "
                             "no mixture meets them (raise a --max or --max-epochs)")
        return cls(tuple(domains), lower, np.minimum(upper, 1.0), tuple(source))

    @property
    def single_mixture(self) -> bool:
        """Whether the bounds leave one mixture only (every weight fixed, or the free mass
        has one domain to go to)."""
        room = self.upper - self.lower > TOLERANCE
        return 1.0 - float(self.lower.sum()) < TOLERANCE or int(room.sum()) < 2

    @property
    def active(self) -> bool:
        """Whether the box is smaller than the simplex."""
        return bool((self.lower > 0).any() or (self.upper < 1.0).any())

    def contains(self, X: np.ndarray, tol: float = 1e-6) -> np.ndarray:
        """bool [n]: which mixtures of X [n, D] are within the bounds."""
        X = np.atleast_2d(X)
        return ((X >= self.lower - tol) & (X <= self.upper + tol)).all(axis=1)

    def project(self, X: np.ndarray) -> np.ndarray:
        """The nearest mixtures (Euclidean) within the bounds, X [n, D] -> [n, D]: clip(x - tau)
        with the shift tau that makes each row sum to 1, found by bisection."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        lo_tau = (X - self.upper).min(axis=1) - 1.0
        hi_tau = (X - self.lower).max(axis=1) + 1.0
        for _ in range(100):
            tau = 0.5 * (lo_tau + hi_tau)
            too_much = np.clip(X - tau[:, None], self.lower, self.upper).sum(axis=1) > 1.0
            lo_tau, hi_tau = np.where(too_much, tau, lo_tau), np.where(too_much, hi_tau, tau)
        out = np.clip(X - (0.5 * (lo_tau + hi_tau))[:, None], self.lower, self.upper)
        return out / out.sum(axis=1, keepdims=True)

    def free_centre(self, centre: np.ndarray) -> tuple[np.ndarray, float]:
        """Where draws concentrate in the free mass: the centre [D] projected onto the
        bounds, less the lower bounds, renormalised over the domains with room ([D], 0
        elsewhere), and that free mass."""
        mass = 1.0 - float(self.lower.sum())
        room = self.upper - self.lower > TOLERANCE
        inside = self.project(np.asarray(centre, dtype=np.float64))[0]
        shifted = np.where(room, np.maximum(inside - self.lower, 0.0), 0.0)
        if shifted.sum() <= 0:
            shifted = room.astype(np.float64)
        return shifted / shifted.sum(), mass

    def binding(self, x: np.ndarray, tol: float = 1e-4) -> dict[str, str]:
        """Which bounds a mixture x [D] sits on: domain -> `--min 0.1`, `--max 0.4`,
        `--fix 0.2` or `repetition cap (--max-epochs) 0.31`."""
        out = {}
        for d, name in enumerate(self.domains):
            if self.upper_source and self.upper_source[d] == "--fix":
                out[name] = f"--fix {self.upper[d]:.3g}"
            elif self.lower[d] > 0 and x[d] <= self.lower[d] + tol:
                out[name] = f"--min {self.lower[d]:.3g}"
            elif self.upper[d] < 1.0 and x[d] >= self.upper[d] - tol:
                out[name] = f"{self.upper_source[d] if self.upper_source else '--max'} {self.upper[d]:.3g}"
        return out

