"""A Mixture in the formats training frameworks read.

| format    | what it is                                                                 |
|-----------|----------------------------------------------------------------------------|
| json/yaml | mixer's canonical form: {"mixture": {domain: weight}}                      |
| megatron  | Megatron-LM `--data-path` weight/prefix pairs (one line)                   |
| olmo      | OLMo-core source-mixture YAML: target_ratio and max_repetition_ratio       |
| hf        | `datasets.interleave_datasets` arguments: datasets and probabilities (JSON)|
| streaming | MosaicML streaming `streams` with `proportion` (YAML)                      |

Paths default to the domain's directory in the workspace; `path_template` (with `{name}`)
points them at the user's own tokenised copies (e.g. Megatron `.bin/.idx` prefixes).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

import yaml

from mixer.errors import MixerError
from mixer.mixture import Mixture


class ExportFormat(str, Enum):
    json = "json"
    yaml = "yaml"
    megatron = "megatron"
    olmo = "olmo"
    hf = "hf"
    streaming = "streaming"


@dataclass
class ExportContext:
    """What some formats need beyond the weights.

    paths: domain -> data path or prefix; domain_tokens: domain -> training tokens (for
    OLMo's repetition caps); token_budget: tokens the training run will consume."""

    paths: Mapping[str, str] = field(default_factory=dict)
    path_template: str | None = None
    domain_tokens: Mapping[str, int] = field(default_factory=dict)
    token_budget: int | None = None
    seed: int = 0

    def path(self, name: str) -> str:
        if self.path_template:
            return self.path_template.format(name=name)
        return str(self.paths.get(name, name))


def export_mixture(mixture: Mixture, fmt: ExportFormat | str, ctx: ExportContext | None = None) -> str:
    ctx = ctx or ExportContext()
    try:
        fmt = ExportFormat(fmt)
    except ValueError:
        raise MixerError(f"unknown export format '{fmt}' (choose from "
                         f"{', '.join(f.value for f in ExportFormat)})") from None
    active = [(n, w) for n, w in zip(mixture.names, mixture.weights) if w > 0]
    if fmt is ExportFormat.json:
        return mixture.to_json() + "\n"
    if fmt is ExportFormat.yaml:
        return mixture.to_yaml()
    if fmt is ExportFormat.megatron:
        return " ".join(f"{w:.10g} {shlex.quote(ctx.path(n))}" for n, w in active) + "\n"
    if fmt is ExportFormat.hf:
        return json.dumps({"datasets": [ctx.path(n) for n, _ in active],
                           "probabilities": [w for _, w in active], "seed": ctx.seed,
                           "stopping_strategy": "all_exhausted"}, indent=2) + "\n"
    if fmt is ExportFormat.streaming:
        return yaml.safe_dump({"streams": {n: {"local": ctx.path(n), "proportion": w} for n, w in active}},
                              sort_keys=False)
    return _olmo(active, ctx)


def _olmo(active: list[tuple[str, float]], ctx: ExportContext) -> str:
    sources = []
    for name, weight in active:
        repetition = 1.0
        if ctx.token_budget and ctx.domain_tokens.get(name):
            repetition = max(1.0, weight * ctx.token_budget / ctx.domain_tokens[name])
        sources.append({"source_name": name, "target_ratio": weight,
                        "max_repetition_ratio": round(repetition, 4), "paths": [ctx.path(name)]})
    doc = {"source_mixture_config": {"max_tokens": ctx.token_budget, "seed": ctx.seed,
                                     "source_configs": sources}}
    return yaml.safe_dump(doc, sort_keys=False)
