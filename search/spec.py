"""SearchSpec: everything `mixer search start` was told, stored with the search as JSON so
that `resume` rebuilds exactly the same search."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import Enum

from mixer.errors import MixerError
from mixer.mixture import parse_count
from search.fidelity import proxy_label, split_proxy_label


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
    fidelities: list[str] | None = None   # labels to run at (proxy: PRESET:TOKENS; table: its labels)
    target_fidelity: str | None = None    # the one optimised (proxy default: the last of fidelities)
    fidelity_costs: dict = field(default_factory=dict)  # label -> cost of one run (else measured)
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
        if self.max_cost is not None and not self.max_cost > 0:
            raise MixerError("--max-cost must be positive")
        if self.evaluator is EvaluatorKind.proxy:
            self._normalize_proxy_fidelities()

    def _normalize_proxy_fidelities(self) -> None:
        """Labels as stored (`tiny:2000000`); preset and tokens become the target's."""
        if self.fidelities:
            self.fidelities = [proxy_label(f) for f in self.fidelities]
            self.target_fidelity = proxy_label(self.target_fidelity) if self.target_fidelity else self.fidelities[-1]
            self.preset, self.tokens = split_proxy_label(self.target_fidelity)
        elif self.target_fidelity:
            raise MixerError("--target-fidelity needs --fidelities")
        self.fidelity_costs = {proxy_label(k): float(v) for k, v in self.fidelity_costs.items()}

    @property
    def fidelity_label(self) -> str:
        """The target fidelity of a proxy search."""
        return f"{self.preset}:{self.tokens}"

    @property
    def proxy_fidelities(self) -> list[str]:
        return self.fidelities or [self.fidelity_label]

    def to_json(self) -> dict:
        return {**asdict(self), "evaluator": self.evaluator.value}

    @classmethod
    def from_json(cls, doc: dict) -> "SearchSpec":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


def parse_tokens(text: str | int) -> int:
    return parse_count(text)
