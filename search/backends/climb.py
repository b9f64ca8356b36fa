"""`climb`: CLIMB's iterative bootstrap (Diao et al., NVIDIA 2025).

The run budget is split into phases in CLIMB's proportions (`rounds`, default 4:2:1, its
64/32/16 of 112 runs), and each phase into rounds no larger than what the round's predictor
has seen: a round proposes at most as many runs as the runs before it (the first round,
`first_round` runs, default regmix's max(4, domains / 4)). So a large budget's first phase
does not spend 4/7 of it on prior draws before the first fit; it doubles 4, 4, 8, 16, ...
Round 1 samples mixtures from the Dirichlet prior. Each later round fits the predictor on
every run of the rounds before it (regmix's regressor and its `auto` rule: LightGBM, as in
CLIMB, once there are 2 x domains runs, and ridge before, where trees cannot rank),
scores `n_candidates` mixtures drawn around the `top_parents` best mixtures found so far
(Dirichlet concentration `strength` around each, multiplied by `shrink` in each later
phase: the search space shrinks around the best), and proposes the best predicted ones,
no two closer than `min_distance` (L1) to each other or to a run already done. The round's
model is fixed while the round runs, so its runs are the same whatever `--parallel` is.
The recommendation and `predict` are regmix's on all runs.

In pool mode (the table evaluator) a later round proposes the unused entries the round's
model predicts best.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import numpy as np

from mixer.errors import MixerError
from search.backends.base import (MIN_DISTANCE, MODELS_THE_WORST_LOSS, FidelityUse, OneCallShorthands, Proposal,
                                  Recommendation, at_random, by_prediction, design_anchors, nearest_distance,
                                  pool_proposals, to_mixture)
from search.backends.regmix import MIN_RUNS_TO_FIT, RegMixBackend, RegMixConfig, Regressor, fit_checked
from search.history import History
from search.quality import FitQuality
from search.space import SearchSpace


@dataclass
class ClimbConfig:
    rounds: list[float] = field(default_factory=lambda: [4.0, 2.0, 1.0])   # the budget's phases, as ratios
    first_round: int = 0                     # runs before the first fit; 0: max(4, domains / 4)
    regressor: Regressor = Regressor.auto    # CLIMB's LightGBM once there are 2 x domains runs, ridge before
    n_candidates: int = 100_000
    top_parents: int = 5                     # the best runs later rounds sample around
    strength: float = 20.0                   # Dirichlet concentration x domains around a parent
    shrink: float = 2.0                      # the concentration's factor in each later phase
    min_distance: float = 0.05               # L1 between two proposals of a round
    seed: int = 0

    def __post_init__(self):
        self.rounds = [float(r) for r in self.rounds]
        self.regressor = Regressor(self.regressor)
        if not self.rounds or min(self.rounds) <= 0:
            raise MixerError("climb rounds must be positive ratios, e.g. 4,2,1")
        if (self.n_candidates < 1 or self.top_parents < 1 or self.strength <= 0 or self.min_distance < 0
                or self.first_round < 0 or self.shrink < 1):
            raise MixerError("climb needs n_candidates >= 1, top_parents >= 1, strength > 0, min_distance >= 0, "
                             "first_round >= 0 and shrink >= 1")


class Round(NamedTuple):
    size: int
    phase: int      # which of `rounds`' phases it belongs to (0: the first)


def plan_rounds(budget: int, ratios: list[float], first: int) -> list[Round]:
    """The budget's phases (`phase_sizes`), each split into rounds that propose at most as
    many runs as were run before them (the first round: `first`)."""
    plan: list[Round] = []
    done = 0
    for phase, size in enumerate(phase_sizes(budget, ratios)):
        while size > 0:
            take = min(size, max(done, 1) if done else first)
            plan.append(Round(take, phase))
            done, size = done + take, size - take
    return plan


def phase_sizes(budget: int, ratios: list[float]) -> list[int]:
    """Runs per phase [<= R], summing to `budget`, in proportion to `ratios` (each at least
    1; a budget smaller than R runs its first phases only)."""
    ratios = ratios[:budget]
    raw = np.asarray(ratios, dtype=np.float64) / np.sum(ratios) * budget
    sizes = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - sizes))[: budget - sizes.sum()]:   # largest remainders first
        sizes[i] += 1
    while (sizes < 1).any():                                      # every round runs at least once
        sizes[np.argmin(sizes)] += 1
        sizes[np.argmax(sizes)] -= 1
    return sizes.tolist()


class ClimbBackend(OneCallShorthands):
    name: ClassVar[str] = "climb"
    fidelities: ClassVar[FidelityUse] = FidelityUse.target
    worst_case: ClassVar[str] = MODELS_THE_WORST_LOSS

    def __init__(self, config: ClimbConfig, space: SearchSpace):
        self.config, self.space = config, space
        first = config.first_round or max(4, len(space.domains) // 4)
        self.plan = plan_rounds(space.budget_runs or 112, config.rounds, first)
        answer = RegMixConfig(regressor=config.regressor, seed=config.seed,   # its own candidate count, too
                              n_candidates=max(config.n_candidates, RegMixConfig.top_k))
        self.regmix = RegMixBackend(answer, space)

    def fit(self, history: History) -> "ClimbFit":
        return ClimbFit(self, history)

    def current_round(self, done: int) -> tuple[int, int]:
        """How many runs the rounds before the current one hold, and the current round's
        phase (past the plan: the last phase)."""
        ends = np.cumsum([r.size for r in self.plan])
        finished = int((ends <= done).sum())
        phase = self.plan[min(finished, len(self.plan) - 1)].phase
        return (int(ends[finished - 1]) if finished else 0), phase


class ClimbFit:
    """CLIMB's rounds over one History: proposals from the predictor of the rounds already
    finished; the answer, its predictions and quality from RegMix's model of every run."""

    def __init__(self, backend: ClimbBackend, history: History):
        self.backend, self.config, self.space, self.history = backend, backend.config, backend.space, history
        self.regmix = backend.regmix.fit(history)

    def propose(self, n: int, rng: np.random.Generator) -> list[Proposal]:
        history = self.history
        target = history.at_fidelity(self.space.target_fidelity) if self.space.pool is None else history
        start, phase = self.backend.current_round(len(target))
        if min(start, len(target)) < MIN_RUNS_TO_FIT:   # round 1 (or too few runs for a predictor)
            return self._first_round(history, target, n, rng)
        seen = target.rows(list(range(min(start, len(target)))))    # the rounds already finished
        model = fit_checked(self.backend.regmix.config, seen.X, seen.y).model
        if self.space.pool is not None:
            return pool_proposals(self.space, history, n, by_prediction(model))
        return self._diverse_best(model, seen, target, n, self.config.strength * self.config.shrink ** phase)

    def _first_round(self, history: History, target: History, n: int, rng: np.random.Generator) -> list[Proposal]:
        """The baselines not run yet (what the answer is compared with), then draws from the
        Dirichlet prior; random table entries in pool mode."""
        if self.space.pool is not None:
            return pool_proposals(self.space, history, n, at_random(rng))
        anchors = design_anchors(self.space, len(self.space.baselines))
        anchors = anchors[nearest_distance(anchors, target.X) >= MIN_DISTANCE][:n]
        points = [*anchors, *self.space.candidates(n - len(anchors), rng)]
        return [Proposal(to_mixture(self.space.domains, x), self.space.target_fidelity) for x in points]

    def _diverse_best(self, model, seen: History, target: History, n: int, strength: float) -> list[Proposal]:
        cfg = self.config
        rng = np.random.default_rng([self.space.seed, cfg.seed, len(seen)])   # the round's model, the round's draws
        parents = seen.X[np.argsort(seen.y)[:cfg.top_parents]]
        per_parent = max(1, cfg.n_candidates // len(parents))
        candidates = np.vstack([self.space.candidates(per_parent, rng, centre=p, strength=(strength, strength))
                                for p in parents])
        order = np.argsort(model.predict(candidates)[0])
        taken, chosen = target.X, []
        for x in candidates[order]:
            if nearest_distance(x[None, :], taken)[0] >= cfg.min_distance:
                chosen.append(x)
                taken = np.vstack([taken, x])
            if len(chosen) == n:
                break
        return [Proposal(to_mixture(self.space.domains, x), self.space.target_fidelity) for x in chosen]

    def recommend(self) -> Recommendation:
        return self.regmix.recommend()

    def quality(self) -> FitQuality:
        return self.regmix.quality()

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.regmix.predict(X)
