"""SearchSpec: everything a search was told, nested by component (as torchtitan nests its
job config), stored with the search as versioned JSON so that `resume` rebuilds exactly the
same search.

    SearchSpec
      name, backend, options, seed, validate
      budget:   runs, max_cost, parallel, replicates
      target:   spec ("avg", "worst", a name, or a=0.7,b=0.3), maximize
      constraints: minimum, maximum, fixed weights by domain (mixer.bounds)
      fidelity: labels, target, costs
      proxy:    train (proxies.TrainConfig), runner (proxies.RunnerConfig), domains, eval_sets,
                groups (group_by, level: how they were asked for), max_epochs, corpus_hashes
      table:    search (an imported search whose runs answer proposals)
      reuse:    search, mode, previous (what it takes from an earlier search: search.reuse)
      stage:    which stage of a hierarchical search it is (search.staged)

Exactly one of `proxy` and `table` is set; it says which evaluator runs the proposals.
Defaults live in these dataclasses (and TrainConfig/RunnerConfig) only: the CLI passes
only what the user typed. Errors name the Python argument (`budget.runs`); the CLI maps
those names to its flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from mixer.bounds import WeightConstraints
from mixer.config import build, to_data
from mixer.errors import MixerError
from mixer.names import check_name
from proxies.runner import RunnerConfig
from proxies.config import TrainConfig, check_seed
from search.fidelity import proxy_label, split_proxy_label
from search.targets import Target

SPEC_VERSION = 2


class EvaluatorKind(str, Enum):
    proxy = "proxy"
    table = "table"


@dataclass
class Budget:
    runs: int = 32                    # proposed runs (validation and baselines are extra)
    max_cost: float | None = None     # stop once the runs' fidelity costs reach this
    parallel: int = 2                 # runs in flight at once, and proposals per batch
    replicates: int = 0               # best runs trained again with other seeds: the seed noise (extra runs)

    def __post_init__(self):
        if self.runs < 1:
            raise MixerError(f"budget.runs must be at least 1, got {self.runs}")
        if self.parallel < 1:
            raise MixerError(f"budget.parallel must be at least 1, got {self.parallel}")
        if not 0 <= self.replicates <= self.runs:
            raise MixerError(f"budget.replicates must be between 0 and budget.runs ({self.runs}), got {self.replicates}")
        if self.max_cost is not None and not self.max_cost > 0:
            raise MixerError(f"budget.max_cost must be positive, got {self.max_cost}")


@dataclass
class FidelitySpec:
    labels: list[str] | None = None   # fidelities to run at (proxy: PRESET:TOKENS; table: its labels)
    target: str | None = None         # the one optimised (proxy default: the last label)
    costs: dict[str, float] = field(default_factory=dict)  # label -> cost of one run, else measured

    def __post_init__(self):
        bad = [label for label, cost in self.costs.items() if not cost > 0]
        if bad:
            raise MixerError(f"fidelity.costs must be positive; {', '.join(bad)} is not")


@dataclass
class ProxySpec:
    train: TrainConfig = field(default_factory=TrainConfig)   # preset and tokens: the target fidelity
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    domains: list[str] | None = None  # default: every training domain of the workspace
    eval_sets: list[str] | None = None  # eval-only sets every run measures (default: all of the workspace's)
    corpus_hashes: dict[str, str] | None = None  # every training domain's content at creation (`corpus diff`)
    groups: dict[str, dict[str, float]] = field(default_factory=dict)  # fixed sub-mixtures searched as one
                                      # domain each (search.groups): name -> {domain: share}
    group_by: dict[str, str] = field(default_factory=dict)  # `--group NAME=PATTERN`: its domains as one, at
                                      # their token shares (resolved into `groups` at creation)
    level: int | None = None          # `--level N`: search the nodes at depth N (mixer.hierarchy), each a group
                                      # of its leaves at their token shares (resolved into `groups` at creation)
    max_epochs: float | None = 4.0    # largest repetition of a domain in a proposal (None: no cap)

    def __post_init__(self):
        if self.max_epochs is not None and not self.max_epochs > 0:
            raise MixerError(f"proxy.max_epochs must be positive, got {self.max_epochs}")
        if self.level is not None and self.group_by:
            raise MixerError("proxy.level and proxy.group_by both group the domains; give one")


class ReuseMode(str, Enum):
    aggregate = "aggregate"    # the unchanged domains as one group at the earlier answer's ratios
    warm_start = "warm-start"  # every domain free; the earlier answer is the first run and a baseline
    full = "full"              # a full re-search; the earlier search is recorded, nothing taken from it


@dataclass
class ReuseSpec:
    search: str = ""                  # the earlier search (`search start --reuse`)
    mode: ReuseMode = ReuseMode.aggregate
    previous: dict[str, float] | None = None  # its answer in this search's domains (a baseline)
    why: str | None = None            # why the mode differs from the one asked for

    def __post_init__(self):
        self.mode = ReuseMode(self.mode)
        if not self.search:
            raise MixerError("--reuse-mode needs --reuse SEARCH, the earlier search to start from")


@dataclass
class StageSpec:
    """One stage of a hierarchical search (`search start --hierarchical`, search.staged)."""

    of: str                           # the hierarchical search (the name of its last stage)
    index: int = 1                    # 1: the stage mixing the parents; 2, 3, ...: one parent's leaves each
    parent: str | None = None         # the parent whose leaves this stage mixes (None in stage 1)
    runs: int = 32                    # the hierarchical search's proposed runs, all stages together
    validate: bool = False            # the user's --validate and --replicates, for the last stage
    replicates: int = 0
    previous: dict[str, float] | None = None  # the answer so far in this stage's coordinates (its baseline)


@dataclass
class TableSpec:
    search: str                       # an imported search (`mixer runs import`)


@dataclass
class SearchSpec:
    name: str | None = None           # None: BACKEND-N, chosen when the search is created
    backend: str = "regmix"
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    validate: bool = False            # train the recommendation once more (proxy only)
    budget: Budget = field(default_factory=Budget)
    target: Target = field(default_factory=Target)
    constraints: WeightConstraints = field(default_factory=WeightConstraints)
    fidelity: FidelitySpec = field(default_factory=FidelitySpec)
    proxy: ProxySpec | None = None
    table: TableSpec | None = None
    reuse: ReuseSpec | None = None    # what this search takes from an earlier one (search.reuse)
    stage: StageSpec | None = None    # which stage of a hierarchical search this is (search.staged)
    version: int = SPEC_VERSION

    def __post_init__(self):
        if self.name is not None:
            check_name(self.name, "search")
        check_seed(self.seed, "the search seed")
        if self.version != SPEC_VERSION:
            raise MixerError(f"search spec version {self.version} is not {SPEC_VERSION}; upgrade mixer")
        if self.proxy is not None and self.table is not None:
            raise MixerError("a search runs on proxies or answers from a table, not both")
        if self.table is None and self.proxy is None:
            self.proxy = ProxySpec()
        if self.table is not None and self.validate:
            raise MixerError("validate trains the recommendation and needs the proxy evaluator")
        if self.table is not None and self.budget.replicates:
            raise MixerError("budget.replicates trains the best runs again with other seeds and needs the proxy "
                             "evaluator (a table holds one value per entry)")
        if self.proxy is not None:
            self._normalize_proxy_fidelities()

    def _normalize_proxy_fidelities(self) -> None:
        """Labels as stored (`tiny:2000000`); the target's preset and tokens become train's."""
        fid = self.fidelity
        if fid.labels:
            fid.labels = [proxy_label(f) for f in fid.labels]
            fid.target = proxy_label(fid.target) if fid.target else fid.labels[-1]
            batch = self.proxy.train.batch_size * self.proxy.train.seq_len
            short = [label for label in fid.labels if split_proxy_label(label)[1] < batch]
            if short:
                raise MixerError(f"fidelity {short[0]} trains fewer tokens than one batch "
                                 f"({self.proxy.train.batch_size} x {self.proxy.train.seq_len} tokens)")
            preset, tokens = split_proxy_label(fid.target)
            self.proxy.train = replace(self.proxy.train, preset=preset, tokens=tokens)
        elif fid.target:
            raise MixerError("fidelity.target needs fidelity.labels")
        fid.costs = {proxy_label(k): float(v) for k, v in fid.costs.items()}

    @property
    def standard_baselines(self) -> bool:
        """Whether uniform and token share are baselines: not in a later stage of a
        hierarchical search, where every weight but one parent's split is fixed and the one
        baseline is the answer so far."""
        return self.stage is None or self.stage.parent is None

    @property
    def previous_answer(self) -> dict[str, float] | None:
        """An earlier answer in this search's coordinates, run first as the `previous`
        baseline: the reused search's (search.reuse) or the stages' so far (search.staged)."""
        if self.reuse is not None and self.reuse.previous:
            return self.reuse.previous
        return self.stage.previous if self.stage is not None else None

    @property
    def evaluator(self) -> EvaluatorKind:
        return EvaluatorKind.table if self.table is not None else EvaluatorKind.proxy

    @property
    def fidelity_label(self) -> str:
        """The target fidelity of a proxy search (`PRESET:TOKENS`)."""
        return f"{self.proxy.train.preset}:{self.proxy.train.tokens}"

    @property
    def proxy_fidelities(self) -> list[str]:
        return self.fidelity.labels or [self.fidelity_label]

    def to_json(self) -> dict:
        return to_data(self)

    @classmethod
    def from_json(cls, doc: dict) -> "SearchSpec":
        """The stored spec; a version-1 (flat) spec of an older workspace is upgraded."""
        if "version" not in doc:
            doc = nest_flat_settings(doc)
        return build(cls, doc, "search")

    @classmethod
    def from_flat(cls, flat: dict) -> "SearchSpec":
        """From flat settings named as `mixer search start`'s flags (runs, tokens, ...);
        what is not given keeps its default."""
        return build(cls, nest_flat_settings(flat, refuse_proxy_settings_of_tables=True), "search")


@dataclass(frozen=True)
class SpecFlag:
    """One setting of `mixer search start`: its flat name (a key of `SearchSpec.from_flat`),
    where it lives in the nested spec, and the flag a user types. The one table both for
    building the spec and for naming the flag in an error about it."""

    name: str
    path: str
    flag: str


SPEC_FLAGS = (
    SpecFlag("runs", "budget.runs", "--runs"), SpecFlag("max_cost", "budget.max_cost", "--max-cost"),
    SpecFlag("parallel", "budget.parallel", "--parallel"), SpecFlag("replicates", "budget.replicates", "--replicates"),
    SpecFlag("target", "target.spec", "--target"), SpecFlag("maximize", "target.maximize", "--maximize"),
    SpecFlag("min_weights", "constraints.minimum", "--min"), SpecFlag("max_weights", "constraints.maximum", "--max"),
    SpecFlag("fixed_weights", "constraints.fixed", "--fix"),
    SpecFlag("fidelities", "fidelity.labels", "--fidelities"),
    SpecFlag("target_fidelity", "fidelity.target", "--target-fidelity"),
    SpecFlag("fidelity_costs", "fidelity.costs", "--fidelity-cost"),
    SpecFlag("preset", "proxy.train.preset", "--preset"), SpecFlag("tokens", "proxy.train.tokens", "--tokens"),
    SpecFlag("seq_len", "proxy.train.seq_len", "--seq-len"),
    SpecFlag("batch_size", "proxy.train.batch_size", "--batch-size"), SpecFlag("lr", "proxy.train.lr", "--lr"),
    SpecFlag("cpus_per_run", "proxy.runner.cpus_per_run", "--cpus"),
    SpecFlag("gpus_per_run", "proxy.runner.gpus_per_run", "--gpus"),
    SpecFlag("ray_address", "proxy.runner.address", "--ray-address"),
    SpecFlag("swarm", "proxy.runner.swarm", "--swarm"), SpecFlag("domains", "proxy.domains", "--domains"),
    SpecFlag("eval_sets", "proxy.eval_sets", "--eval"),
    SpecFlag("max_epochs", "proxy.max_epochs", "--max-epochs"), SpecFlag("table", "table.search", "--table"),
    SpecFlag("reuse", "reuse.search", "--reuse"), SpecFlag("reuse_mode", "reuse.mode", "--reuse-mode"),
    SpecFlag("group_by", "proxy.group_by", "--group"), SpecFlag("level", "proxy.level", "--level"),
)
_NESTING = {f.name: f.path for f in SPEC_FLAGS}   # flat name -> path in the nested spec
_TOP_LEVEL = ("name", "backend", "options", "seed", "validate")


def nest_flat_settings(flat: dict, refuse_proxy_settings_of_tables: bool = False) -> dict:
    """Flat settings (version 1 of the stored spec, and the CLI's flags) nested by component;
    only the keys given (None: not given), so every other setting keeps its default. A table
    search's proxy settings are refused (a user's flags) or dropped (a stored version-1 spec
    holds them all)."""
    flat = dict(flat)
    evaluator = flat.pop("evaluator", "table" if flat.get("table") else "proxy")
    if evaluator == "table" and not flat.get("table"):
        raise MixerError("the table evaluator needs a table search (`mixer runs import`)")
    nested: dict[str, Any] = {"version": SPEC_VERSION, "proxy" if evaluator != "table" else "table": {}}
    for key, value in flat.items():
        if key not in _NESTING and key not in _TOP_LEVEL:
            raise MixerError(f"unknown search setting '{key}'")
        if value is None:
            continue  # not given
        if evaluator == "table" and _NESTING.get(key, "").startswith("proxy."):
            if refuse_proxy_settings_of_tables:
                raise MixerError(f"{_NESTING[key]} is a proxy setting, and a table search trains nothing")
            continue
        *parents, leaf = _NESTING.get(key, key).split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested
