"""A Mixture in the formats training frameworks read.

| format    | what it is                                                                 |
|-----------|----------------------------------------------------------------------------|
| json/yaml | mixer's canonical form: {"mixture": {domain: weight}}                      |
| megatron  | Megatron-LM `--data-path` weight/prefix pairs (one line)                   |
| olmo      | OLMo-core source-mixture YAML: target_ratio and max_repetition_ratio       |
| hf        | `datasets.interleave_datasets` arguments: datasets and probabilities (JSON)|
| streaming | MosaicML streaming `streams` with `proportion` (YAML)                      |

The framework formats (megatron, olmo, hf, streaming) need `path_template` (with `{name}`,
when there are several domains): mixer's domain folders are not datasets of those
frameworks, so paths must point at the user's own copies (e.g. Megatron `.bin/.idx`
prefixes). Only what belongs to the target job is written: OLMo's `max_tokens` and
repetition caps only when the target job's token budget is given (never a proxy's).
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


NAME_FIELD = "{name}"   # where a domain's name goes in a --path-template


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

    path_template: the user's data path per domain, with {name}; domain_tokens: domain ->
    training tokens (for OLMo's repetition caps); token_budget: tokens the target training
    run will consume (None: not given, so no caps)."""

    path_template: str | None = None
    domain_tokens: Mapping[str, int] = field(default_factory=dict)
    token_budget: int | None = None
    seed: int = 0

    def path(self, name: str) -> str:
        """The template with each `{name}` replaced: a plain replace, never `str.format` (a
        template is user text; format fields could read attributes or pad to any width)."""
        return self.path_template.replace(NAME_FIELD, name) if self.path_template else name


def export_mixture(mixture: Mixture, fmt: ExportFormat | str, ctx: ExportContext | None = None) -> str:
    ctx = ctx or ExportContext()
    try:
        fmt = ExportFormat(fmt)
    except ValueError:
        raise MixerError(f"unknown export format '{fmt}' (choose from "
                         f"{', '.join(f.value for f in ExportFormat)})") from None
    active = [(n, w) for n, w in zip(mixture.names, mixture.weights) if w > 0]
    if fmt not in (ExportFormat.json, ExportFormat.yaml):
        _check_template(fmt, ctx.path_template, len(active))
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


def _check_template(fmt: ExportFormat, template: str | None, n_domains: int) -> None:
    if not template:
        raise MixerError(f"--format {fmt.value} needs --path-template (e.g. /data/{{name}}_text_document): "
                         f"mixer's domain folders are not {fmt.value} datasets")
    if NAME_FIELD not in template and n_domains > 1:
        raise MixerError(f"--path-template {template!r} has no {{name}}: all {n_domains} domains would share one path")
    if "{" in template.replace(NAME_FIELD, "") or "}" in template.replace(NAME_FIELD, ""):
        raise MixerError(f"--path-template {template!r}: use {{name}} and no other braces")


def _olmo(active: list[tuple[str, float]], ctx: ExportContext) -> str:
    sources = []
    for name, weight in active:
        repetition = 1.0
        if ctx.token_budget and ctx.domain_tokens.get(name):
            repetition = max(1.0, weight * ctx.token_budget / ctx.domain_tokens[name])
        sources.append({"source_name": name, "target_ratio": weight,
                        "max_repetition_ratio": round(repetition, 4), "paths": [ctx.path(name)]})
    config = {"max_tokens": ctx.token_budget} if ctx.token_budget else {}
    doc = {"source_mixture_config": {**config, "seed": ctx.seed, "source_configs": sources}}
    return yaml.safe_dump(doc, sort_keys=False)
