"""`bayesopt`: Bayesian optimisation of the mixture, multi-fidelity as in ADMIRE-BayesOpt.

Model: `search.gp.MixtureGP`, a BoTorch GP over the weights plus fidelity inputs (model
size and token budget, 1 at the target fidelity), refitted on the whole history each time.

Acquisition:
- one fidelity: `qLogNoisyExpectedImprovement` (Ament et al., 2023);
- several: `qMultiFidelityMaxValueEntropy` (Takeno et al., 2020), information about the
  target fidelity's optimum per unit cost (`InverseCostWeightedUtility` over a
  deterministic cost model of the fidelities' costs, see `search.fidelity`).
Batches of `n` are built greedily: each pick is added as a pending point (fantasised) before
the next, as `optimize_acqf_discrete` does, among the `batch_screen` choices that score best
alone (scoring every choice under fantasies costs several seconds per pick).

The simplex: the acquisition is maximised over a discrete candidate set, never by gradient.
Candidates are `n_candidates` Dirichlet draws, half around the prior (the data plane's
sampler, so repetition caps hold) and half around the mixtures with the best posterior mean
(`local_strength` sets how close), each one scored at every fidelity; in pool mode they are
the pool's unused entries. Every proposal is therefore a valid mixture by construction and
sparse mixtures (zero weights) are reachable, which a softmax or stick-breaking
reparameterisation makes hard. `optimize_acqf` with an equality constraint was the
alternative; gradient-based knowledge gradient under that constraint takes minutes per
step on 2 cores (proposal times: benchmarks/search.py, `propose_s_*`).

Cheap fidelities are checked, not assumed (`search.fidelity_gate`): every target run is
shadowed by a cheap run of the same mixture, and a cheap fidelity whose paired runs rank
mixtures unlike the target (Spearman < 0.5 over 4 or more pairs) is dropped from the model
and no longer proposed or shadowed, for the rest of the search. Until every cheap fidelity
has a verdict, each batch holds at least one target run.

Recommendation: the mixture with the best posterior mean at the target fidelity, among the
candidates plus every mixture run so far (pool mode: the pool's mixtures), with its
posterior std combined with the GP's out-of-fold error (`search.quality`). The driver's
guard (`search.guard`) replaces it with the best target-fidelity run when the model is
weak or the pick is not predicted better than that run by more than its std, so one
target-fidelity run never makes an unevaluated corner the answer.

Initial design: `n_initial` space-filling points at the cheapest fidelity.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from functools import cached_property
from typing import ClassVar

import numpy as np
import torch

from mixer.errors import MixerError
from search.backends.base import (MODELS_THE_WORST_LOSS, FidelityUse, OneCallShorthands,
                                  Proposal, Recommendation, TooFewRuns, initial_design,
                                  pool_proposal, to_mixture, unused_pool)
from search.fidelity import Fidelities
from search.fidelity_gate import FidelityGate, check_fidelities
from search.gp import MixtureGP
from search.history import History, same_mixture
from search.quality import MIN_RUNS_TO_CHECK, FitQuality, calibrated_std, fit_quality, out_of_fold
from search.space import SearchSpace
from search.threads import one_thread

CHECKED_RUNS = 64   # target-fidelity runs cross-validated for the fit quality (5 refits in all)
FRONTIER_SIZE = 512  # mixtures max-value entropy samples the target's optimum over (`_likely_optima`)


class PoolRecommend(str, Enum):
    evaluated = "evaluated"   # pool mode: among mixtures with a target-fidelity run, as ADMIRE-BayesOpt does
    any = "any"               # any pool mixture, on the strength of the posterior alone


@dataclass
class BayesOptConfig:
    n_initial: int = 0              # 0: max(4, domains / 4) prior draws at the cheapest fidelity first
    n_candidates: int = 2048        # mixtures scored per proposal (each at every fidelity)
    local_fraction: float = 0.5     # share of candidates drawn around the best posterior means
    local_strength: float = 30.0    # largest Dirichlet concentration / D of local candidates
    num_fantasies: int = 16         # max-value entropy: fantasy models per pending point
    num_mv_samples: int = 10        # max-value entropy: samples of the target's optimum
    batch_screen: int = 256         # a batch is built greedily among the best single-point choices
    recommend_candidates: int = 20_000
    pool_recommend: PoolRecommend = PoolRecommend.evaluated
    seed: int = 0

    def __post_init__(self):
        self.pool_recommend = PoolRecommend(self.pool_recommend)
        if self.n_candidates < 16 or self.recommend_candidates < 16:
            raise MixerError("bayesopt needs n_candidates and recommend_candidates >= 16")
        if not 0 <= self.local_fraction <= 1 or self.local_strength <= 1:
            raise MixerError("bayesopt needs 0 <= local_fraction <= 1 and local_strength > 1")
        if self.num_fantasies < 1 or self.num_mv_samples < 1 or self.n_initial < 0:
            raise MixerError("bayesopt needs num_fantasies >= 1, num_mv_samples >= 1 and n_initial >= 0")


class BayesOptBackend(OneCallShorthands):
    name: ClassVar[str] = "bayesopt"
    fidelities: ClassVar[FidelityUse] = FidelityUse.any
    worst_case: ClassVar[str] = MODELS_THE_WORST_LOSS

    def __init__(self, config: BayesOptConfig, space: SearchSpace):
        self.config, self.space = config, space

    def fit(self, history: History) -> "BayesOptFit":
        return BayesOptFit(self, history)

    def n_initial(self) -> int:
        return max(2, self.config.n_initial or max(4, len(self.space.domains) // 4))


class BayesOptFit:
    """The GP of one History and what it answers; the fidelity gate, the GP and its
    out-of-fold quality are each computed once, on first use."""

    def __init__(self, backend: BayesOptBackend, history: History):
        self.backend, self.config, self.space, self.history = backend, backend.config, backend.space, history

    # -- the model -------------------------------------------------------------------------

    @cached_property
    def gate(self) -> FidelityGate:
        """Which cheap fidelities inform the target, by their paired runs (`search.fidelity_gate`)."""
        h, fidelity = self.history, self.space.fidelity
        return check_fidelities(h.X, h.y, h.fidelity, fidelity.labels, fidelity.target)

    @cached_property
    def fidelities(self) -> Fidelities:
        """The search's fidelities less those the gate drops."""
        fidelity = self.space.fidelity
        return fidelity.restricted(self.gate.kept(fidelity.labels, fidelity.target)) if fidelity.multi else fidelity

    def _new_gp(self) -> MixtureGP:
        return MixtureGP(len(self.space.domains), self.fidelities)

    @cached_property
    def training_set(self) -> tuple[np.ndarray, np.ndarray]:
        """Z [n, D + F] and y [n] of the runs at the fidelities the model uses."""
        h, labels = self.history, self.fidelities.labels
        keep = [i for i, f in enumerate(h.fidelity) if f in labels]
        return self._new_gp().inputs(h.X[keep], [h.fidelity[i] for i in keep]), h.y[keep]

    @cached_property
    def gp(self) -> MixtureGP:
        Z, y = self.training_set
        if len(y) < 2 or np.ptp(y) == 0:
            raise TooFewRuns(f"bayesopt needs at least 2 finished runs with different targets, has {len(y)}")
        return self._new_gp().fit(Z, y)

    def quality(self) -> FitQuality:
        return self._quality

    @cached_property
    def _quality(self) -> FitQuality:
        """Out-of-fold quality on target-fidelity runs: each fold's GP sees every other run,
        of any fidelity; at most `CHECKED_RUNS` runs are checked (5 refits in all)."""
        Z, y = self.training_set
        rows = self._target_rows()
        checked = np.random.default_rng(0).permutation(rows)[:CHECKED_RUNS]
        oof = (out_of_fold(lambda _, test: self._fold_predict(Z, y, test), checked)
               if len(checked) >= MIN_RUNS_TO_CHECK else (None, None))
        quality = fit_quality(y[checked], *oof, len(self.space.domains))
        in_run_order = None   # the predictions in the order of the target runs, when every one was checked
        if oof[0] is not None and len(checked) == len(rows):
            in_run_order = oof[0][np.argsort(checked)]
        return replace(quality, out_of_fold=in_run_order)

    def _target_rows(self) -> np.ndarray:
        """Rows of the training set at the target fidelity."""
        labels = [f for f in self.history.fidelity if f in self.fidelities.labels]
        return np.flatnonzero([f == self.space.target_fidelity for f in labels])

    def _fold_predict(self, Z: np.ndarray, y: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = np.setdiff1d(np.arange(len(y)), test)
        if len(keep) < 2 or np.ptp(y[keep]) == 0:
            return np.full(len(test), y[keep].mean()), np.zeros(len(test))
        gp = self._new_gp().fit(Z[keep], y[keep])
        return gp.predict_target(Z[test, :len(self.space.domains)])

    def _costs(self) -> dict[str | None, float]:
        prior = self.space.fidelity.cost_table()
        return {label: self.history.costs.get(label, prior[label]) for label in self.space.fidelity.labels}

    # -- candidates ------------------------------------------------------------------------

    def _mixture_candidates(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Mixtures [n', D]: around the prior, and around the runs with the best posterior mean."""
        n_local = int(n * self.config.local_fraction) if len(self.history) else 0
        parts = [self.space.candidates(n - n_local, rng)]
        if n_local:
            observed = np.unique(self.history.X, axis=0)
            centres = observed[np.argsort(self.gp.predict_target(observed)[0])[:4]]
            for centre, share in zip(centres, np.array_split(np.arange(n_local), len(centres))):
                parts.append(self.space.candidates(len(share), rng, centre=centre,
                                                   strength=(1.0, self.config.local_strength)))
        return np.concatenate(parts)

    def _choices(self, rng: np.random.Generator
                 ) -> tuple[np.ndarray, list[str | None], list[str | None], np.ndarray]:
        """What may be proposed: mixtures [c, D], their fidelities [c], pool keys [c], and the
        mixtures [m, D] whose optimum at the target fidelity max-value entropy reasons about.
        Only at the fidelities the GP models: the gate's dropped ones are not bought."""
        labels = self.fidelities.labels
        if self.space.pool is not None:
            pool = self.space.pool
            free = [i for i in unused_pool(self.space, self.history) if pool.fidelity[i] in labels]
            return (pool.X[free], [pool.fidelity[i] for i in free], [pool.keys[i] for i in free],
                    np.unique(pool.X, axis=0))
        mixtures = self._mixture_candidates(self.config.n_candidates, rng)
        return (np.repeat(mixtures, len(labels), axis=0), labels * len(mixtures), [None] * len(mixtures) * len(labels),
                mixtures)

    # -- the interface ---------------------------------------------------------------------

    def _initial(self, n: int, rng: np.random.Generator) -> list[Proposal]:
        """The space-filling design at the cheapest fidelity (pool mode: unused entries
        there first, in random order)."""
        cheapest = self.space.fidelity.cheapest()
        if self.space.pool is None:
            return initial_design(self.space, self.history, n, rng, self.backend.n_initial(), self.config.seed,
                                  cheapest)
        pool = self.space.pool
        free = rng.permutation(unused_pool(self.space, self.history))
        free = np.concatenate([free[[pool.fidelity[i] == cheapest for i in free]],
                               free[[pool.fidelity[i] != cheapest for i in free]]])[:n]
        return [pool_proposal(self.space, i) for i in free]

    def propose(self, n: int, rng: np.random.Generator) -> list[Proposal]:
        _, y = self.training_set
        if len(y) < self.backend.n_initial() or np.ptp(y) == 0:
            return self._initial(n, rng)
        shadows = self._shadows(max(1, n // 2))
        if len(shadows) >= n:
            return shadows[:n]
        n -= len(shadows)
        X, fidelities, keys, frontier = self._choices(rng)
        if not len(X):
            return shadows
        choices = torch.as_tensor(self.gp.inputs(X, fidelities), dtype=torch.float64)
        with torch.random.fork_rng(), one_thread():
            torch.manual_seed(int(rng.integers(2**31)))
            acquisition = self._acquisition(frontier)
            picked = _optimize_discrete(acquisition, min(n, len(X)), choices, self.config.batch_screen)
            rows = torch.cdist(picked, choices).argmin(dim=1).tolist()
            rows = self._with_a_target_run(acquisition, rows, fidelities, choices)
        return shadows + [Proposal(to_mixture(self.space.domains, X[i]), fidelities[i], keys[i]) for i in rows]

    def _with_a_target_run(self, acquisition, rows: list[int], fidelities: list[str | None],
                           choices: torch.Tensor) -> list[int]:
        """While the gate has no verdict on some cheap fidelity (too few pairs), every batch
        holds a target-fidelity run: the acquisition's best one replaces its last pick. A
        misleading cheap fidelity would otherwise keep the search from ever testing it."""
        target = self.space.target_fidelity
        undecided = any(r is None for r in self.gate.correlation.values())
        at_target = [i for i, f in enumerate(fidelities) if f == target]
        if not undecided or not at_target or any(fidelities[i] == target for i in rows):
            return rows
        return rows[:-1] + [at_target[int(_scores_alone(acquisition, choices[at_target]).argmax())]]

    def _shadows(self, limit: int) -> list[Proposal]:
        """Cheap-fidelity runs of mixtures run at the target but not yet at that cheap
        fidelity (at most `limit`): the pairs the fidelity gate measures."""
        fidelity, pool, history = self.space.fidelity, self.space.pool, self.history
        if not fidelity.multi:
            return []
        free = unused_pool(self.space, history) if pool is not None else None
        kept = self.gate.kept(fidelity.labels, fidelity.target)  # a dropped fidelity is not bought again
        done = {label: history.at_fidelity(label).X for label in kept if label != fidelity.target}
        shadows = []
        for x in history.at_fidelity(fidelity.target).X:
            for label, runs in done.items():
                if same_mixture(runs, x).any():
                    continue
                if pool is None:
                    shadows.append(Proposal(to_mixture(self.space.domains, x), label))
                else:
                    match = [i for i in free[same_mixture(pool.X[free], x)] if pool.fidelity[i] == label]
                    shadows.extend(pool_proposal(self.space, i) for i in match[:1])
                if len(shadows) >= limit:
                    return shadows
        return shadows

    def _acquisition(self, frontier: np.ndarray):
        gp = self.gp
        if not gp.fidelity.multi:
            from botorch.acquisition.logei import qLogNoisyExpectedImprovement

            return qLogNoisyExpectedImprovement(gp.model, X_baseline=gp.model.train_inputs[0], prune_baseline=True)
        from botorch.acquisition.cost_aware import InverseCostWeightedUtility
        from botorch.acquisition.max_value_entropy_search import qMultiFidelityMaxValueEntropy

        return qMultiFidelityMaxValueEntropy(
            gp.model, candidate_set=torch.as_tensor(gp.at_target(_likely_optima(gp, frontier)), dtype=torch.float64),
            num_fantasies=self.config.num_fantasies, num_mv_samples=self.config.num_mv_samples,
            cost_aware_utility=InverseCostWeightedUtility(gp.cost_model(self._costs())),
            project=gp.project_to_target)

    def recommend(self) -> Recommendation:
        gp, quality, history = self.gp, self.quality(), self.history
        if self.space.pool is not None:
            candidates = np.unique(self.space.pool.X, axis=0)
            evaluated = history.at_fidelity(self.space.target_fidelity).X
            if self.config.pool_recommend is PoolRecommend.evaluated and len(evaluated):
                candidates = np.unique(evaluated, axis=0)
        else:
            rng = np.random.default_rng(self.config.seed)
            candidates = np.concatenate([self._mixture_candidates(self.config.recommend_candidates, rng), history.X])
        mean, std = gp.predict_target(candidates)
        best = int(np.argmin(mean))
        labels = self.space.fidelity.labels
        evidence = {"runs": len(history), "target_fidelity": self.space.target_fidelity,
                    "runs_by_fidelity": {str(label): history.fidelity.count(label) for label in labels},
                    "costs": {str(label): cost for label, cost in self._costs().items()},
                    "candidates": len(candidates)}
        if self.space.fidelity.multi:
            evidence["cheap_fidelities"] = self.gate.evidence()
        return Recommendation(to_mixture(self.space.domains, candidates[best]), float(mean[best]),
                              float(calibrated_std(std[best:best + 1], quality)[0]), evidence)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self.gp.predict_target(X)
        return mean, calibrated_std(std, self.quality())


def _likely_optima(gp: MixtureGP, frontier: np.ndarray) -> np.ndarray:
    """The `FRONTIER_SIZE` mixtures [<=k, D] of `frontier` [m, D] with the best upper bound
    (posterior mean - 2 std, minimising): the ones whose values the target optimum's samples
    are drawn from. BoTorch samples them under their joint posterior (an m x m covariance,
    built twice per acquisition), most of a proposal's time at 2048 mixtures; mixtures far
    below the bound almost never hold the maximum."""
    if len(frontier) <= FRONTIER_SIZE:
        return frontier
    mean, std = gp.predict_target(frontier)
    return frontier[np.argsort(mean - 2 * std)[:FRONTIER_SIZE]]


def _scores_alone(acquisition, choices: torch.Tensor) -> torch.Tensor:
    """The acquisition value [c] of each choice [c, d] as a batch of one (no pending points)."""
    with torch.no_grad():
        return torch.cat([acquisition(part[:, None, :]) for part in choices.split(2048)])


def _optimize_discrete(acquisition, q: int, choices: torch.Tensor, screen: int) -> torch.Tensor:
    """The q best choices [q, d]: the single best, then greedily with the picks as pending
    points, among the `screen` choices that score best alone (fantasising is costly)."""
    import warnings

    from botorch.optim import optimize_acqf_discrete

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BoTorch warns when fantasising on few points
        if q > 1 and len(choices) > screen:
            choices = choices[_scores_alone(acquisition, choices).topk(screen).indices]
        return optimize_acqf_discrete(acquisition, q=q, choices=choices, max_batch_size=4096)[0]
