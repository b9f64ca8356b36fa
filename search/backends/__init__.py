"""Backend registry: name -> (backend class, typed config class), each module imported
when its backend is first used (bayesopt and mixing_law import torch; a regmix `predict`
or `search status` need not)."""

from __future__ import annotations

import dataclasses
import typing
from importlib import import_module
from typing import Any

import pandas as pd

from mixer.config import build, parse_pairs, to_data
from mixer.errors import MixerError
from search.backends.base import Backend, Model, Proposal, Recommendation
from search.space import SearchSpace

_MODULES = {  # name -> (module, backend class, config class)
    "random": ("search.backends.random", "RandomBackend", "RandomConfig"),
    "regmix": ("search.backends.regmix", "RegMixBackend", "RegMixConfig"),
    "bayesopt": ("search.backends.bayesopt", "BayesOptBackend", "BayesOptConfig"),
    "mixing_law": ("search.backends.mixing_law", "MixingLawBackend", "MixingLawConfig"),
    "climb": ("search.backends.climb", "ClimbBackend", "ClimbConfig"),
}
BACKENDS = tuple(_MODULES)


def backend_classes(name: str) -> tuple[type, type]:
    """(backend class, config class) of backend `name`; an unknown name fails in one line."""
    if name not in _MODULES:
        raise MixerError(f"unknown backend '{name}' (choose from {', '.join(_MODULES)})")
    module, backend, config = _MODULES[name]
    loaded = import_module(module)
    return getattr(loaded, backend), getattr(loaded, config)


def option_table() -> pd.DataFrame:
    """One row per backend option: backend, option, type, default (`mixer search backends`)."""
    from mixer.config import type_name

    rows = []
    for backend in BACKENDS:
        config_class = backend_classes(backend)[1]
        hints = typing.get_type_hints(config_class)
        for f in dataclasses.fields(config_class):
            default = (f.default if f.default is not dataclasses.MISSING
                       else f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            rows.append({"backend": backend, "option": f.name, "type": type_name(hints[f.name]),
                         "default": "" if default is None else str(to_data(default))})
    return pd.DataFrame(rows, columns=["backend", "option", "type", "default"])


def capability_table() -> pd.DataFrame:
    """Which fidelities each backend runs and how it handles `--target worst` (`mixer search
    backends`)."""
    return pd.DataFrame([{"backend": b, "fidelities": backend_classes(b)[0].fidelities.value,
                          "worst-case target": backend_classes(b)[0].worst_case} for b in BACKENDS],
                        columns=["backend", "fidelities", "worst-case target"])


def parse_options(pairs: list[str]) -> dict[str, str]:
    """`--option KEY=VALUE` strings -> {key: text}; values are typed by `backend_config`."""
    return parse_pairs(pairs, "--option", split_commas=False, form="KEY=VALUE")


def backend_config(name: str, options: dict[str, Any]) -> Any:
    """The backend's typed config from user options: unknown names and values of the wrong
    type fail here, at creation, naming the option and the type it expects."""
    return build(backend_classes(name)[1], options, f"backend {name}")


def typed_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The given options as typed values (what a search stores)."""
    config = backend_config(name, options)
    return {key: to_data(getattr(config, key)) for key in options}


def make_backend(name: str, options: dict[str, Any], space: SearchSpace) -> Backend:
    config = backend_config(name, options)  # an unknown name fails here, in one line
    return backend_classes(name)[0](config, space)


__all__ = ["BACKENDS", "Backend", "Model", "Proposal", "Recommendation", "backend_classes", "backend_config",
           "capability_table", "make_backend", "option_table", "parse_options", "typed_options"]
