"""Proxy models (dense and MoE), the training loop, and the Ray runner."""

from mixer.layout import check_layout

check_layout()  # fail loudly if another distribution owns this name

from proxies.model import ProxyConfig, ProxyLM, parameter_counts
from proxies.presets import PRESETS, preset_config, preset_parameters
from proxies.train import LRSchedule, ProxyResult, TrainConfig, train_proxy

__all__ = ["PRESETS", "LRSchedule", "ProxyConfig", "ProxyLM", "ProxyResult", "TrainConfig",
           "parameter_counts", "preset_config", "preset_parameters", "train_proxy"]
