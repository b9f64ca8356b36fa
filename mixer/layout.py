"""The top-level names mixer installs (`mixer proxies search store cli`) must be mixer's own.

The layout is fixed by the design, and `search`, `store`, `proxies` and `cli` are generic
names in site-packages: another distribution may install a module of the same name, and
whichever comes first on `sys.path` wins. `check_layout()` finds each name without
importing it and fails loudly, naming the distribution that shadows it, instead of letting
mixer run somebody else's `store`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

OWN_TOP_LEVEL = ("proxies", "search", "store", "cli")


class ShadowedPackageError(ImportError):
    """Another installed distribution owns one of mixer's top-level names."""


def _origin(name: str) -> Path | None:
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__file__", None):
        return Path(module.__file__).resolve()
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).resolve() if spec is not None and spec.origin else None


def _owner(name: str) -> str:
    owners = importlib.metadata.packages_distributions().get(name, [])
    others = [d for d in owners if d.lower() != "mixer"]
    return f"distribution {', '.join(sorted(set(others)))}" if others else "another module"


def check_layout() -> None:
    """Raise ShadowedPackageError unless every top-level name resolves next to `mixer`."""
    root = Path(__file__).resolve().parents[1]
    for name in OWN_TOP_LEVEL:
        origin = _origin(name)
        if origin is None:
            raise ShadowedPackageError(f"mixer is installed incompletely: module '{name}' is missing "
                                       "(reinstall with `pip install .`)")
        if root not in origin.parents:
            raise ShadowedPackageError(
                f"mixer's top-level module '{name}' is shadowed by {origin} ({_owner(name)}); "
                f"mixer expects it under {root}. Install mixer in its own virtual environment.")
