"""Fidelities: the settings a search may run a mixture at, what each costs, and how a model
of the target sees them.

A fidelity is a label. With the proxy evaluator it is `PRESET:TOKENS` (`tiny:2000000`);
with the table evaluator it is whatever label the imported runs carry (`1m`, `60m`). The
search optimises the target fidelity; cheaper ones inform it.

Each label maps to fidelity inputs in [0, 1], 1 at the target, as BoTorch's multi-fidelity
models expect. Proxy labels have two: model size (active non-embedding parameters) and
token budget, each `log(v / v_min) / log(v_target / v_min)`; a dimension that does not vary
is dropped. Table labels have one, the same map applied to their cost.

Costs, in order of precedence: the user's `--fidelity-cost`; else the median measured run
time of each fidelity in the store, once every fidelity has one; else (proxy labels) the
training FLOPs estimate 6 x (active non-embedding + head parameters) x tokens. The last two
are relative to one run at the target fidelity, so `--max-cost 10` means ten target runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from mixer.config import parse_pairs
from mixer.errors import MixerError
from mixer.mixture import parse_count


@dataclass
class Fidelities:
    """labels: the fidelities [L]; target: the one optimised; inputs: float [L, F] the model's
    fidelity inputs (all 1 at the target; F = 0 with one fidelity); input_names [F];
    costs: float [L] cost of one run at each label; user_costs: the user gave them (measured
    run times do not replace them)."""

    labels: list[str | None]
    target: str | None
    inputs: np.ndarray = field(default_factory=lambda: np.zeros((1, 0)))
    input_names: list[str] = field(default_factory=list)
    costs: np.ndarray = field(default_factory=lambda: np.ones(1))
    user_costs: bool = False

    @classmethod
    def single(cls, label: str | None) -> "Fidelities":
        return cls([label], label)

    @property
    def multi(self) -> bool:
        return len(self.labels) > 1

    def index(self, label: str | None) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise MixerError(f"unknown fidelity '{label}' (this search runs at {', '.join(map(str, self.labels))})") \
                from None

    def inputs_of(self, label: str | None) -> np.ndarray:
        return self.inputs[self.index(label)]

    def restricted(self, labels: list[str | None]) -> "Fidelities":
        """These fidelities less those not in `labels` (the target stays); one left: single."""
        kept = [label for label in self.labels if label in labels or label == self.target]
        if len(kept) == len(self.labels):
            return self
        if len(kept) == 1:
            return Fidelities.single(self.target)
        rows = [self.index(label) for label in kept]
        return Fidelities(kept, self.target, self.inputs[rows], self.input_names, self.costs[rows], self.user_costs)

    def cheapest(self) -> str | None:
        return self.labels[int(np.argmin(self.costs))]

    def cost_table(self, measured: Mapping[str, float] | None = None) -> dict[str | None, float]:
        """Cost per label: the user's; else measured run times (relative to the target's) once
        every label has one; else the prior costs."""
        if not self.user_costs and measured and all(label in measured and measured[label] > 0 for label in self.labels):
            base = measured[self.target]
            return {label: float(measured[label] / base) for label in self.labels}
        return {label: float(c) for label, c in zip(self.labels, self.costs)}


def proxy_label(text: str) -> str:
    """'tiny:2M' -> 'tiny:2000000' (the label stored with each run)."""
    preset, sep, tokens = text.strip().partition(":")
    if not sep or not preset:
        raise MixerError(f"bad fidelity '{text}': expected PRESET:TOKENS, e.g. tiny:2M")
    return f"{preset}:{parse_count(tokens)}"


def split_proxy_label(label: str) -> tuple[str, int]:
    preset, _, tokens = label.partition(":")
    return preset, int(tokens)


def parse_costs(pairs: list[str] | str | None) -> dict[str, float]:
    """`LABEL=COST` items (repeated or comma-separated) -> {label: cost}, costs > 0."""
    costs = {}
    for label, value in parse_pairs(pairs or [], "--fidelity-cost", form="LABEL=COST").items():
        try:
            cost = float(value)
        except ValueError:
            cost = float("nan")
        if not cost > 0 or cost == float("inf"):
            raise MixerError(f"bad --fidelity-cost '{label}={value}': expected LABEL=COST with COST > 0")
        costs[label] = cost
    return costs


def _log_scale(values: np.ndarray, target: float) -> np.ndarray | None:
    """log(v / v_min) / log(v_target / v_min), or None when every value is the same."""
    low = values.min()
    if np.all(values == low):
        return None
    return np.log(values / low) / np.log(target / low)


def _check_target_is_largest(labels: list[str], values: np.ndarray, target: int, what: str) -> None:
    above = [labels[i] for i in np.flatnonzero(values > values[target])]
    if above:
        raise MixerError(f"target fidelity {labels[target]} must have the largest {what}; "
                         f"{', '.join(above)} {'has' if len(above) == 1 else 'have'} more")


def _checked_costs(labels: list[str], costs: Mapping[str, float]) -> np.ndarray:
    unknown = sorted(set(costs) - set(labels))
    if unknown:
        raise MixerError(f"--fidelity-cost names {', '.join(unknown)}, not a fidelity of this search "
                         f"({', '.join(labels)})")
    missing = [label for label in labels if label not in costs]
    if missing:
        raise MixerError(f"--fidelity-cost gives no cost for {', '.join(missing)}")
    return np.array([costs[label] for label in labels], dtype=np.float64)


def _check_labels(labels: list[str], target: str) -> int:
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise MixerError(f"--fidelities lists {', '.join(twice)} twice")
    if target not in labels:
        raise MixerError(f"--target-fidelity {target} is not among the fidelities ({', '.join(labels)})")
    return labels.index(target)


def proxy_fidelities(labels: list[str], target: str, vocab_size: int,
                     user_costs: Mapping[str, float] | None = None) -> Fidelities:
    """Fidelities of proxy runs: inputs from model size and tokens, prior costs from FLOPs."""
    from proxies.presets import preset_config, preset_parameters

    t = _check_labels(labels, target)
    if len(labels) == 1:
        return _one(labels, target, user_costs)
    sizes, flops_per_token = [], []
    for label in labels:
        preset, _ = split_proxy_label(label)
        counts = preset_parameters(preset, vocab_size)
        head = preset_config(preset, vocab_size).d_model * vocab_size
        sizes.append(counts["active_non_embedding"])
        flops_per_token.append(6.0 * (counts["active_non_embedding"] + head))
    sizes = np.array(sizes, dtype=np.float64)
    tokens = np.array([split_proxy_label(label)[1] for label in labels], dtype=np.float64)
    _check_target_is_largest(labels, sizes, t, "model (active non-embedding parameters)")
    _check_target_is_largest(labels, tokens, t, "token budget")
    columns = {name: scaled for name, values in (("size", sizes), ("tokens", tokens))
               if (scaled := _log_scale(values, values[t])) is not None}
    flops = np.array(flops_per_token) * tokens
    costs = _checked_costs(labels, user_costs) if user_costs else flops / flops[t]
    return Fidelities(labels, target, np.stack(list(columns.values()), axis=1), list(columns), costs,
                      bool(user_costs))


def _one(labels: list[str], target: str, user_costs: Mapping[str, float] | None) -> Fidelities:
    """One fidelity: no inputs; its cost 1 unless the user priced it."""
    return Fidelities(labels, target, costs=_checked_costs(labels, user_costs) if user_costs else np.ones(1),
                      user_costs=bool(user_costs))


def table_fidelities(labels: list[str], target: str, user_costs: Mapping[str, float] | None,
                     measured: Mapping[str, float] | None = None) -> Fidelities:
    """Fidelities of a run table: the one input is the log-scaled cost."""
    t = _check_labels(labels, target)
    if len(labels) == 1:
        return _one(labels, target, user_costs)
    if user_costs:
        costs = _checked_costs(labels, user_costs)
    elif measured and all(label in measured for label in labels):   # relative to one target run, as measured
        costs = np.array([measured[label] for label in labels]) / measured[target]   # costs are (cost_table)
    else:
        raise MixerError(f"fidelities {', '.join(labels)} need costs: give --fidelity-cost "
                         f"({','.join(f'{label}=COST' for label in labels)}) or import the table's run costs "
                         "with `runs import --cost-column`")
    _check_target_is_largest(labels, costs, t, "cost")
    scaled = _log_scale(costs, costs[t])
    if scaled is None or np.sum(costs == costs[t]) > 1:
        raise MixerError(f"target fidelity {target} must cost more than every other fidelity")
    return Fidelities(labels, target, scaled[:, None], ["cost"], costs, bool(user_costs))
