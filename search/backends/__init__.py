"""Backend registry: name -> (backend class, typed config class)."""

from __future__ import annotations

import dataclasses
from typing import Any

from mixer.errors import MixerError
from search.backends.base import Backend, Proposal, Recommendation
from search.backends.bayesopt import BayesOptBackend, BayesOptConfig
from search.backends.random import RandomBackend, RandomConfig
from search.backends.regmix import RegMixBackend, RegMixConfig
from search.space import SearchSpace

REGISTRY: dict[str, tuple[type, type]] = {
    "random": (RandomBackend, RandomConfig),
    "regmix": (RegMixBackend, RegMixConfig),
    "bayesopt": (BayesOptBackend, BayesOptConfig),
}


def parse_options(pairs: list[str]) -> dict[str, str]:
    """`--option key=value` strings -> dict."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise MixerError(f"bad --option '{pair}': expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def backend_config(name: str, options: dict[str, Any]) -> Any:
    """The backend's typed config from user options; unknown names fail here, at creation."""
    if name not in REGISTRY:
        raise MixerError(f"unknown backend '{name}' (choose from {', '.join(REGISTRY)})")
    config_cls = REGISTRY[name][1]
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = [k for k in options if k not in fields]
    if unknown:
        raise MixerError(f"backend {name} has no option {', '.join(unknown)} "
                         f"(options: {', '.join(fields) or 'none'})")
    typed = {}
    for key, value in options.items():
        kind = type(fields[key].default)
        try:
            typed[key] = value if not isinstance(value, str) or kind is str else (
                kind(float(value)) if kind in (int, float) else kind(value))
        except (TypeError, ValueError):
            raise MixerError(f"backend {name}: bad value {value!r} for option {key}") from None
    try:
        return config_cls(**typed)
    except (TypeError, ValueError) as exc:
        raise MixerError(f"backend {name}: {exc}") from None


def make_backend(name: str, options: dict[str, Any], space: SearchSpace) -> Backend:
    return REGISTRY[name][0](backend_config(name, options), space)


__all__ = ["REGISTRY", "Backend", "Proposal", "Recommendation", "backend_config", "make_backend", "parse_options"]
