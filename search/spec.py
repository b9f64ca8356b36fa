"""SearchSpec: everything `mixer search start` was told, stored with the search as JSON so
that `resume` rebuilds exactly the same search."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import Enum

from mixer.errors import MixerError
from mixer.mixture import parse_count


class EvaluatorKind(str, Enum):
    proxy = "proxy"
    table = "table"


@dataclass
class SearchSpec:
    name: str
    backend: str = "regmix"
    options: dict = field(default_factory=dict)
    evaluator: EvaluatorKind = EvaluatorKind.proxy
    target: str = "avg"
    maximize: bool = False
    runs: int = 32
    parallel: int = 2
    seed: int = 0
    max_cost: float | None = None     # stop once the runs' cost (fidelity costs) reaches this
    validate: bool = False
    # proxy evaluator
    preset: str = "tiny"
    tokens: int = 5_000_000
    seq_len: int = 256
    batch_size: int = 16
    lr: float = 3e-3
    domains: list[str] | None = None  # default: every domain of the workspace
    max_epochs: float = 4.0           # repetition cap of the candidate sampler
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    ray_address: str | None = None
    # table evaluator
    table: str | None = None          # an imported search whose runs answer proposals

    def __post_init__(self):
        self.evaluator = EvaluatorKind(self.evaluator)
        if self.runs < 1 or self.parallel < 1:
            raise MixerError("--runs and --parallel must be at least 1")
        if self.evaluator is EvaluatorKind.table and not self.table:
            raise MixerError("--evaluator table needs --table SEARCH (runs imported with `mixer runs import`)")
        if self.evaluator is EvaluatorKind.table and self.validate:
            raise MixerError("--validate trains the recommendation and needs --evaluator proxy")

    @property
    def fidelity_label(self) -> str:
        return f"{self.preset}:{self.tokens}"

    def to_json(self) -> dict:
        return {**asdict(self), "evaluator": self.evaluator.value}

    @classmethod
    def from_json(cls, doc: dict) -> "SearchSpec":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


def parse_tokens(text: str | int) -> int:
    return parse_count(text)
