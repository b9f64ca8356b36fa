"""Proxy models (dense and MoE), the training loop, and the Ray runner.

The names below load on first use (PEP 562), so that importing a torch-free part
(`proxies.config`, `proxies.runner`'s configs) does not import torch.
"""

from importlib import import_module

from mixer.layout import check_layout

check_layout()  # fail loudly if another distribution owns this name

_EXPORTS = {
    "ProxyConfig": "proxies.model", "ProxyLM": "proxies.model", "parameter_counts": "proxies.model",
    "PRESETS": "proxies.presets", "preset_config": "proxies.presets", "preset_parameters": "proxies.presets",
    "LRSchedule": "proxies.config", "ProxyResult": "proxies.config", "TrainConfig": "proxies.config",
    "train_proxy": "proxies.train",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'proxies' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
