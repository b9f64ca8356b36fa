"""Mixture and Schedule: the words every other module speaks.

A `Mixture` maps domain names to sampling weights. It is finite, non-negative and sums to
one; inputs that sum to one within `SUM_TOLERANCE` are renormalised exactly, anything
further off is refused (a mixture that sums to 0.9 is a bug upstream, not rounding).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import yaml

from mixer.config import parse_pairs
from mixer.errors import MixerError
from mixer.hierarchy import flatten, lies_under

SUM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Mixture:
    """Domain name -> weight, sorted by name; weights are non-negative and sum to 1."""

    names: tuple[str, ...]
    weights: tuple[float, ...]

    def __init__(self, weights: Mapping[str, float], known_domains: Iterable[str] | None = None):
        if not weights:
            raise MixerError("a mixture needs at least one domain")
        items = sorted((str(k), v) for k, v in weights.items())
        for name, w in items:
            if not name:
                raise MixerError("a mixture has an empty domain name")
            try:
                w = float(w)
            except (TypeError, ValueError):
                raise MixerError(f"weight of domain '{name}' is not a number: {w!r}") from None
            if not math.isfinite(w):
                raise MixerError(f"weight of domain '{name}' is not finite: {w}")
            if w < 0:
                raise MixerError(f"weight of domain '{name}' is negative: {w}")
        values = np.array([float(w) for _, w in items], dtype=np.float64)
        total = float(values.sum())
        if abs(total - 1.0) > SUM_TOLERANCE:
            raise MixerError(f"mixture weights sum to {total:.9g}, not 1 (tolerance {SUM_TOLERANCE:g})")
        values = values / total
        names = tuple(name for name, _ in items)
        if known_domains is not None:
            known = set(known_domains)
            unknown = [n for n in names if n not in known]
            if unknown:
                parent = next((n for n in unknown if any(lies_under(k, n) for k in known)), None)
                raise MixerError(f"unknown domain(s) in mixture: {', '.join(unknown)}" + (
                    f" ('{parent}' is a parent: give its leaves' weights, or nest shares of it, e.g. "
                    f"{parent}=0.5,{parent}/a=0.7,{parent}/b=0.3)" if parent else
                    f" (known: {', '.join(sorted(known)) or 'none'})"))
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "weights", tuple(float(v) for v in values))

    @classmethod
    def normalized(cls, weights: Mapping[str, float], known_domains: Iterable[str] | None = None
                   ) -> "Mixture":
        """Scale non-negative weights to sum 1 (for samplers and optimisers, not user input)."""
        total = sum(float(v) for v in weights.values())
        if not total > 0:
            raise MixerError("mixture weights sum to zero")
        return cls({k: float(v) / total for k, v in weights.items()}, known_domains)

    @classmethod
    def uniform(cls, names: Iterable[str]) -> "Mixture":
        names = list(names)
        return cls.normalized({n: 1.0 for n in names})

    @classmethod
    def parse(cls, text: str, known_domains: Iterable[str] | None = None) -> "Mixture":
        """Parse `web=0.5,code=0.3,math=0.2` (the CLI form); nested shares under parents
        (`web=0.6,web/news=0.5,web/blogs=0.5,code=0.4`) flatten to leaves (mixer.hierarchy)."""
        weights: dict[str, float] = {}
        for name, value in parse_pairs(text, "mixture entry", form="NAME=WEIGHT").items():
            try:
                weights[name] = float(value)
            except ValueError:
                raise MixerError(f"bad weight for domain '{name}': '{value}'") from None
        return cls(flatten(weights), known_domains)

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.names, self.weights))

    def weight(self, name: str) -> float:
        return self.as_dict().get(name, 0.0)

    def vector(self, names: Iterable[str]) -> np.ndarray:
        """Weights in the order of `names` (0 for domains the mixture does not name)."""
        d = self.as_dict()
        return np.array([d.get(n, 0.0) for n in names], dtype=np.float64)

    def to_json(self) -> str:
        return json.dumps({"mixture": self.as_dict()}, indent=2)

    def to_yaml(self) -> str:
        return yaml.safe_dump({"mixture": self.as_dict()}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Mixture":
        return cls(flatten(_unwrap(_load(json.loads, text, "JSON"))))

    @classmethod
    def from_yaml(cls, text: str) -> "Mixture":
        return cls(flatten(_unwrap(_load(yaml.safe_load, text, "YAML"))))

    def __str__(self) -> str:
        return ",".join(f"{n}={w:.6g}" for n, w in zip(self.names, self.weights))


_SUFFIXES = {"k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9, "t": 10**12}


def parse_count(text: str | int) -> int:
    """'2M' -> 2_000_000, '500k' -> 500_000, '1.5B' -> 1_500_000_000, '123' -> 123."""
    raw = str(text).strip().lower().replace("_", "")
    scale = _SUFFIXES.get(raw[-1:], 1) if raw else 1
    number = raw[:-1] if scale != 1 else raw
    try:
        value = float(number) * scale
    except ValueError:
        raise MixerError(f"bad count '{text}': use a number with an optional K, M or B suffix") from None
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise MixerError(f"bad count '{text}': must be a whole, finite, non-negative number")
    return int(value)


def _load(loader, text: str, kind: str):
    try:
        return loader(text)
    except Exception as exc:  # json/yaml raise several types
        raise MixerError(f"mixture is not valid {kind}: {exc}".splitlines()[0]) from None


def _unwrap(doc) -> Mapping[str, float]:
    if isinstance(doc, Mapping) and "mixture" in doc:
        doc = doc["mixture"]
    if not isinstance(doc, Mapping):
        raise MixerError("a mixture file must hold a mapping of domain name to weight")
    return doc


@dataclass(frozen=True)
class Schedule:
    """Piecewise-constant mixtures over training progress.

    `starts[i]` is the fraction of training (in [0, 1)) at which `mixtures[i]` takes over;
    `starts[0]` is 0. A static mixture is a one-piece schedule.
    """

    starts: tuple[float, ...]
    mixtures: tuple[Mixture, ...]

    def __post_init__(self):
        if not self.mixtures or len(self.starts) != len(self.mixtures):
            raise MixerError("a schedule needs one start per mixture and at least one piece")
        if self.starts[0] != 0.0:
            raise MixerError("a schedule's first piece must start at 0")
        if any(not 0.0 <= s < 1.0 for s in self.starts) or list(self.starts) != sorted(set(self.starts)):
            raise MixerError("schedule starts must be strictly increasing fractions in [0, 1)")

    @classmethod
    def constant(cls, mixture: Mixture) -> "Schedule":
        return cls((0.0,), (mixture,))

    def at(self, progress: float) -> Mixture:
        """The mixture in force at a fraction `progress` of training."""
        index = int(np.searchsorted(np.asarray(self.starts), progress, side="right")) - 1
        return self.mixtures[max(index, 0)]

    def as_dict(self) -> dict:
        return {"schedule": [{"start": s, "mixture": m.as_dict()} for s, m in zip(self.starts, self.mixtures)]}

    @classmethod
    def from_dict(cls, doc: Mapping) -> "Schedule":
        pieces = doc.get("schedule") if isinstance(doc, Mapping) else None
        if not isinstance(pieces, list):
            raise MixerError("a schedule must be {'schedule': [{'start': s, 'mixture': {...}}, ...]}")
        return cls(tuple(float(p["start"]) for p in pieces), tuple(Mixture(p["mixture"]) for p in pieces))
