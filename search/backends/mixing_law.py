"""`mixing_law`: log-linear data mixing laws with an exact constrained optimum (Data Mixing
Laws, Ye et al. 2025; olmix, AI2 2026).

Fit (`search.law`): Data Mixing Laws' two forms, one law u_m(p) = c_m + exp(b_m + t_m . p)
per metric the target combines (the explicit form: each domain's loss for `avg`, the named
ones for a weighted target), and one law on the target itself (the implicit form); the
lower out-of-fold error chooses. Runs without per-metric values (a replayed table) or a
single-metric target have the implicit form only. The fit on all runs, `bootstrap - 1` bootstrap refits and 5
cross-validation folds are one batched optimisation.

Optimum (`search.law_optimum`): the target's combination of the laws (a weighted sum, or
for `--target worst` their maximum, in epigraph form) plus `kl_reg * KL(p || prior)`, over
the simplex within the weight bounds (repetition caps, `--min/--max/--fix`), solved
exactly by cvxpy. A target that rewards a metric (negative coefficient on a convex law) is not convex:
then the optimum is the best of `n_candidates` prior draws, and the evidence says so.

Propose: a space-filling design of domains + 2 runs first (a law needs domains + 1 to be
determined; with fewer its optimum flies to a corner); then the optimum of the fit on all
runs, then the optima of bootstrap refits (Thompson-style), so a batch is diverse where
the law is uncertain. In pool mode, each proposal is the unused table entry its law
(fit on all runs, then bootstraps) predicts best.

Fidelities (proxy runs, Data Mixing Laws' nested pipeline): with several, each mixture is
trained at every cheaper fidelity (its ladder, cheapest first), its target-fidelity loss is
extrapolated along model size and tokens by a scaling law (`search.scaling`), and the laws
are fitted on those values (a measured target run, such as a baseline's, wins over an
extrapolation). Proposals complete started ladders first. A table's runs are not a
ladder: over a table, mixing_law searches one fidelity.

Uncertainty: the spread of the bootstrap laws' predictions, combined with the out-of-fold
RMSE (`search.quality.calibrated_std`), as for regmix.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import ClassVar, NamedTuple

import numpy as np

from mixer.errors import MixerError
from mixer.mixture import Mixture
from search.backends.base import (FidelityUse, OneCallShorthands, Proposal, Recommendation, TooFewRuns,
                                  initial_design, pool_proposals, to_mixture)
from search.history import History, MetricValues, combine
from search.law import LawFitConfig, LogLinearLaws, bootstrap_weights, fit_laws, fold_weights
from search.law_optimum import LawProgram
from search.quality import FOLDS, MIN_RUNS_TO_CHECK, FitQuality, calibrated_std, fit_quality, lowest_error
from search.scaling import AtTarget, cheap_labels, check_ladder, extrapolated, ladders
from search.space import SearchSpace


@dataclass
class MixingLawConfig:
    huber_delta: float = 0.5       # fit defaults: search.law.LawFitConfig (chosen by benchmarks/law_fit.py)
    starts: int = 4
    l2: float = 1e-5
    kl_reg: float = 0.05           # olmix's default pull toward the prior
    prior: str = "token-share"     # token-share (the search's prior), uniform, or NAME=W,NAME=W
    bootstrap: int = 16            # fits: the one on all runs plus bootstrap - 1 resamples
    n_candidates: int = 100_000    # prior draws scored when the optimum is not convex
    n_initial: int = 0             # 0: domains + 2 space-filling runs, the fewest that determine a law
    seed: int = 0

    def __post_init__(self):
        if (self.huber_delta <= 0 or self.starts < 1 or self.l2 < 0 or self.kl_reg < 0 or self.bootstrap < 1
                or self.n_candidates < 1 or self.n_initial < 0):
            raise MixerError("mixing_law needs huber_delta > 0, starts >= 1, l2 >= 0, kl_reg >= 0, bootstrap >= 1, "
                             "n_candidates >= 1 and n_initial >= 0")

    def fit_config(self) -> LawFitConfig:
        return LawFitConfig(huber_delta=self.huber_delta, starts=self.starts, l2=self.l2, seed=self.seed)


def resolve_prior(text: str, space: SearchSpace) -> np.ndarray:
    """The KL prior [D] named by the `prior` option."""
    if text == "token-share":
        return space.prior / space.prior.sum()
    if text == "uniform":
        return np.full(len(space.domains), 1.0 / len(space.domains))
    try:
        weights = Mixture.parse(text, space.domains).vector(space.domains)
    except MixerError as error:
        raise MixerError(f"mixing_law prior '{text}': {error} (or use token-share, uniform)") from None
    weights = np.maximum(weights, 1e-6)   # KL to a zero weight would forbid the domain outright
    return weights / weights.sum()


class FittedLaws(NamedTuple):
    laws: LogLinearLaws      # fits [1 + bootstraps]: row 0 on all runs
    metrics: list[str]       # what each law models ("target" for a law on the target itself)
    terms: np.ndarray        # [M] the target = sum(terms * u_m), minimise orientation
    quality: FitQuality      # with the out-of-fold predictions of the runs (5 folds)
    worst: bool = False      # the target is max_m u_m instead (`--target worst`)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Each fit's predicted target at X [n, D] -> [fits, n]."""
        return combine(self.laws.predict(X), self.terms, self.worst)

    @property
    def convex(self) -> bool:
        return bool((self.terms >= 0).all())


def law_forms(history: History) -> list[MetricValues]:
    """What the laws may fit, in order of preference: each metric the target combines
    (History.per_metric: Data Mixing Laws' explicit form), and the target itself (its
    implicit form)."""
    target = MetricValues(history.y[:, None], ["target"], np.ones(1), False)
    explicit = history.per_metric()
    return [explicit, target] if explicit is not None else [target]


def fit(cfg: MixingLawConfig, history: History) -> FittedLaws:
    """The laws of each form (`law_forms`), the one with the lower out-of-fold RMSE; with
    too few runs to check, the first."""
    n = len(history)
    if n < 3:
        raise TooFewRuns(f"mixing_law needs at least 3 finished runs to fit, has {n}")
    fitted = [fit_form(cfg, history, data) for data in law_forms(history)]
    return lowest_error(fitted, lambda f: f.quality)


def fit_form(cfg: MixingLawConfig, history: History, data: MetricValues) -> FittedLaws:
    """Laws of `data` on every run, bootstrap refits, and the out-of-fold quality on 5 folds."""
    n = len(history)
    weights = [bootstrap_weights(n, cfg.bootstrap, cfg.seed)]
    checked = n >= MIN_RUNS_TO_CHECK
    if checked:
        folds, fold_of = fold_weights(n, FOLDS, cfg.seed)
        weights.append(folds)
    laws = fit_laws(history.X, data.values, np.vstack(weights), cfg.fit_config())
    fitted = FittedLaws(laws.select(slice(0, cfg.bootstrap)), data.metrics, data.terms,
                        FitQuality(n, len(history.domains)), data.worst)
    if not checked:
        return fitted._replace(quality=fit_quality(history.y, None, None, len(history.domains)))
    per_fold = data.combine(laws.select(slice(cfg.bootstrap, None)).predict(history.X))
    oof = per_fold[fold_of, np.arange(n)]
    spread = fitted.predict(history.X).std(axis=0)
    return fitted._replace(quality=fit_quality(history.y, oof, np.maximum(spread, 1e-12), len(history.domains)))


class MixingLawBackend(OneCallShorthands):
    name: ClassVar[str] = "mixing_law"
    fidelities: ClassVar[FidelityUse] = FidelityUse.ladder
    worst_case: ClassVar[str] = "exact: one law per loss, their maximum minimised in epigraph form (cvxpy)"

    def __init__(self, config: MixingLawConfig, space: SearchSpace):
        self.config, self.space = config, space
        self.prior = resolve_prior(config.prior, space)
        if self.ladder:
            check_ladder(space.fidelity)

    @property
    def ladder(self) -> bool:
        """Proxy runs at several fidelities: each mixture runs at every cheaper one and is
        extrapolated to the target (search.scaling), Data Mixing Laws' nested pipeline."""
        return self.space.fidelity.multi and self.space.pool is None

    def fit(self, history: History) -> "MixingLawFit":
        return MixingLawFit(self, history)

    def n_initial(self) -> int:
        """A law has domains + 1 parameters: fitted on fewer runs it is free to put its
        optimum in a corner (a user's 8-run search spent 4 runs on corners that way)."""
        return self.config.n_initial or len(self.space.domains) + 2


class MixingLawFit:
    """The laws of one History, fitted on first use on the target-fidelity runs (every run
    in pool mode; with a ladder, each mixture's measured or extrapolated target)."""

    def __init__(self, backend: MixingLawBackend, history: History):
        self.backend, self.config, self.space, self.history = backend, backend.config, backend.space, history

    @cached_property
    def at_target(self) -> AtTarget:
        """One row per mixture whose target-fidelity value is known or extrapolated."""
        if self.space.pool is not None:
            return AtTarget(self.history, np.zeros(len(self.history), dtype=bool))
        if self.backend.ladder:
            return extrapolated(self.history, self.space.fidelity, self.config.huber_delta)
        at_target = self.history.at_fidelity(self.space.target_fidelity)
        return AtTarget(at_target, np.zeros(len(at_target), dtype=bool))

    @cached_property
    def fitted(self) -> FittedLaws:
        return fit(self.config, self.at_target.history)

    @cached_property
    def program(self) -> LawProgram:
        """The optimum's convex program, compiled once per model and re-solved for each
        bootstrap fit (a model of its own: the solutions depend on this History alone)."""
        return LawProgram(self.backend.prior, self.space.bounds, self.config.kl_reg, len(self.fitted.terms),
                          worst=self.fitted.worst)

    def optimum(self, fit_index: int = 0) -> tuple[np.ndarray, str]:
        """The fit's optimal mixture [D] and how it was found ("convex program" or the
        candidate search, with why)."""
        fitted = self.fitted
        laws = fitted.laws
        if fitted.convex:
            return (self.program.solve(laws.b[fit_index], laws.t[fit_index], fitted.terms, laws.c[fit_index]),
                    "convex program (epigraph of the largest law)" if fitted.worst else "convex program")
        rng = np.random.default_rng([self.config.seed, fit_index])
        candidates = self.space.candidates(self.config.n_candidates, rng)
        kl = (candidates * np.log(np.maximum(candidates, 1e-12) / self.backend.prior)).sum(axis=1)
        score = fitted.predict(candidates)[fit_index] + self.config.kl_reg * kl
        return candidates[int(np.argmin(score))], ("candidate search: the target rewards a fitted loss, "
                                                   "so the law's optimum is not a convex program")


    def propose(self, n: int, rng: np.random.Generator) -> list[Proposal]:
        if not self.backend.ladder:
            return self._proposals(n, rng, self.space.target_fidelity)
        fidelity = self.space.fidelity
        rungs = cheap_labels(fidelity)
        missing = [Proposal(to_mixture(self.space.domains, x), label)
                   for x, label in ladders(self.history).missing(fidelity)]
        budget = self.space.budget_runs
        room = (budget - len(self.history) if budget else len(missing) + n * len(rungs)) - len(missing)
        climbed: list[Proposal] = []
        for p in self._proposals(max(n - len(missing), 0), rng, rungs[0]):   # each is at least one run
            ladder = [p] if p.fidelity == fidelity.target else [Proposal(p.mixture, label) for label in rungs]
            if len(ladder) > room:   # a ladder the budget cannot finish is not started
                break
            climbed, room = climbed + ladder, room - len(ladder)
        if not missing and not climbed and room > 0:   # what is left measures mixtures at the target
            return self._proposals(min(n, room), rng, fidelity.target)
        return (missing + climbed)[:n]

    def _proposals(self, n: int, rng: np.random.Generator, fidelity: str | None) -> list[Proposal]:
        """n mixtures at `fidelity`: the initial design, then the laws' optima."""
        if len(self.at_target.history) < self.backend.n_initial():
            return initial_design(self.space, self.history, n, rng, self.backend.n_initial(), self.config.seed,
                                  fidelity)
        fitted = self.fitted
        fits = len(fitted.laws.c)
        if self.space.pool is not None:
            return pool_proposals(self.space, self.history, n, lambda X: _round_robin(fitted.predict(X), n))
        points = [self.optimum(k % fits)[0] for k in range(min(n, fits))]
        if n > fits:  # more than the fits can give: the law's best prior draws around its optimum
            around = self.space.candidates(100 * n, rng, centre=points[0], strength=(2.0, 50.0))
            points += list(around[np.argsort(fitted.predict(around)[0])[: n - fits]])
        return [Proposal(to_mixture(self.space.domains, x), fidelity) for x in points]

    def recommend(self) -> Recommendation:
        fitted = self.fitted
        choice, solver = self.optimum()
        predicted, std = self.predict(choice[None, :])
        evidence = {"runs": len(self.history), "extrapolated": int(self.at_target.extrapolated.sum()),
                    "solver": solver, "kl_reg": self.config.kl_reg, "prior": self.config.prior, "laws": fitted.metrics,
                    "interaction": {m: dict(zip(self.space.domains, np.round(fitted.laws.t[0, i], 6).tolist()))
                                    for i, m in enumerate(fitted.metrics)}}
        return Recommendation(to_mixture(self.space.domains, choice), float(predicted[0]), float(std[0]), evidence)

    def quality(self) -> FitQuality:
        """The fit's out-of-fold quality; with a ladder its rows are mixtures (measured or
        extrapolated), not the target-fidelity runs in order, so it keeps no per-run
        predictions (`mixer plot` then draws the runs with regmix's default model)."""
        if self.backend.ladder:
            return replace(self.fitted.quality, out_of_fold=None)
        return self.fitted.quality

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        predictions = self.fitted.predict(X)
        return predictions[0], calibrated_std(predictions.std(axis=0), self.fitted.quality)


def _round_robin(predictions: np.ndarray, n: int) -> np.ndarray:
    """Positions [<= n] of the entries each bootstrap fit in turn ranks best among those not
    yet taken, from predictions [fits, u] of u entries (one fit's optimum per proposal, as
    off the table)."""
    order: list[int] = []
    for k in range(min(n, predictions.shape[1])):
        ranked = np.argsort(predictions[k % len(predictions)])
        order.append(int(next(i for i in ranked if i not in order)))
    return np.array(order, dtype=np.int64)
