"""The backend interface: propose the next runs, recommend a mixture.

Backends are rebuilt from the search's stored config every time they are used and see
only the History, so a search resumes anywhere and runs of one search can warm-start
another.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar, Protocol

import numpy as np

from mixer.errors import MixerError
from mixer.mixture import Mixture
from search.history import History
from search.quality import FitQuality
from search.space import SearchSpace

MIN_DISTANCE = 0.02   # L1 between two runs' weights below which the second is a duplicate (search.novelty)


@dataclass
class Proposal:
    mixture: Mixture
    fidelity: str | None = None
    pool_key: str | None = None     # the table entry to evaluate (pool mode)


class TooFewRuns(MixerError):
    """A model backend cannot fit its model on so few runs (the search then answers its
    best run, saying why)."""


@dataclass
class Recommendation:
    mixture: Mixture
    predicted: float | None          # target in the user's orientation
    predicted_std: float | None
    evidence: dict = field(default_factory=dict)


class Model(Protocol):
    """A backend fitted on one History (`Backend.fit`): every answer about those runs comes
    from one fit, made on first use and kept on the model. Values are in minimise
    orientation (search.targets.Target turns them into the user's)."""

    history: History

    def propose(self, n: int, rng: np.random.Generator) -> list[Proposal]:
        """Up to n new runs (mixture, fidelity, pool key)."""
        ...

    def recommend(self) -> Recommendation:
        """The mixture the model thinks best, its predicted target and calibrated std."""
        ...

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and calibrated std [m] of the target at mixtures X [m, D]."""
        ...

    def quality(self) -> FitQuality:
        """The model's out-of-fold fit quality on the target-fidelity runs (search.quality)."""
        ...


class FidelityUse(Enum):
    """Which fidelities a backend's runs may use (`mixer search backends` says)."""

    target = "the target only"
    any = "several (proxy runs, or a table's), chosen run by run"
    ladder = "several (proxy runs): each mixture at every cheaper one, extrapolated to the target"


class Backend(Protocol):
    """A search method, as a scikit-learn estimator: `fit(history)` returns its Model.
    Backends hold no state the store does not have: a model depends on the History (and
    the backend's config and space) alone, so a resumed search proposes what the
    uninterrupted one would have. `tests/search/test_backend_contract.py` is the
    checklist every backend passes."""

    name: ClassVar[str]
    fidelities: ClassVar[FidelityUse]
    worst_case: ClassVar[str]         # how it handles `--target worst` (`mixer search backends` says)
    space: SearchSpace

    def fit(self, history: History) -> Model: ...


MODELS_THE_WORST_LOSS = "models the largest loss as the target itself (a max is not smooth, so less exactly)"


class OneCallShorthands:
    """`backend.propose(history, n, rng)` for `backend.fit(history).propose(n, rng)`, and
    likewise `recommend`, `predict` and `quality`: one fit per call, for one-off questions
    (tests, notebooks, benchmarks). The driver fits once per round and asks the model."""

    def propose(self, history: History, n: int, rng: np.random.Generator) -> list[Proposal]:
        return self.fit(history).propose(n, rng)

    def recommend(self, history: History) -> Recommendation:
        return self.fit(history).recommend()

    def predict(self, history: History, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.fit(history).predict(X)

    def quality(self, history: History) -> FitQuality:
        return self.fit(history).quality()


def to_mixture(domains: list[str], x: np.ndarray) -> Mixture:
    return Mixture.normalized(dict(zip(domains, np.maximum(x, 0.0))))


def pool_proposals(space: SearchSpace, history: History, n: int,
                   rank: Callable[[np.ndarray], np.ndarray]) -> list[Proposal]:
    """The first n unused table entries in the order `rank` puts them: rank(X [u, D], the
    unused entries' mixtures) -> their positions [<= u], best first."""
    free = unused_pool(space, history)
    order = np.asarray(rank(space.pool.X[free]), dtype=np.int64)[:n]
    return [pool_proposal(space, i) for i in free[order]]


def at_random(rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """A `pool_proposals` rank: the entries in random order."""
    return lambda X: rng.permutation(len(X))


def by_prediction(model) -> Callable[[np.ndarray], np.ndarray]:
    """A `pool_proposals` rank: the entries by a model's predicted target (`model.predict`),
    lowest first."""
    return lambda X: np.argsort(model.predict(X)[0])


def pool_proposal(space: SearchSpace, i: int) -> Proposal:
    """A run of table entry i."""
    return Proposal(to_mixture(space.domains, space.pool.X[i]), space.pool.fidelity[i], space.pool.keys[i])


def unused_pool(space: SearchSpace, history: History) -> np.ndarray:
    """Positions of the table entries neither run nor pending."""
    used = {k for k in history.pool_keys if k} | {k for k in history.pending_keys if k}
    return np.array([i for i, k in enumerate(space.pool.keys) if k not in used], dtype=np.int64)


def nearest_distance(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """[n]: the L1 distance from each mixture of X [n, D] to the nearest of Y [m, D] (inf
    when Y is empty)."""
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64).reshape(-1, np.shape(X)[-1])
    if not len(Y):
        return np.full(len(X), np.inf)
    rows = max(1, 4_000_000 // Y.size)  # chunks of X: at most 4M differences (32 MB) at a time
    return np.concatenate([np.abs(X[i:i + rows, None, :] - Y[None, :, :]).sum(axis=2).min(axis=1)
                           for i in range(0, len(X), rows)] or [np.zeros(0)])


def near(X: np.ndarray, x: np.ndarray) -> np.ndarray:
    """bool [n]: which mixtures of X [n, D] are closer than `MIN_DISTANCE` (L1) to x [D], the
    novelty rule's duplicates."""
    return nearest_distance(np.asarray(X).reshape(-1, len(x)), x[None, :]) < MIN_DISTANCE


def trust_region_candidates(space: SearchSpace, X: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator,
                            radius: float, centres: int = 4) -> np.ndarray:
    """Up to n mixtures [<= n, D] no further than `radius` (L1) from one of the measured runs
    X [m, D] (targets y [m], minimise orientation): half drawn around the `centres` best,
    half the prior's draws that fall within reach. A regression fitted on a few runs is
    linear far from them; its minimum over the whole simplex is a corner, and a 16-run
    regmix search spent 6 runs on one-hot corners, each the worst of its search
    (issue 11). Kept within reach of what was measured, a step moves at most `radius`
    of weight (a TuRBO-style trust region around the data)."""
    if not len(X):
        return space.candidates(n, rng)
    best = X[np.argsort(y)[:centres]]
    parts = [space.candidates(len(share), rng, centre=centre, strength=(1.0, 50.0))
             for centre, share in zip(best, np.array_split(np.arange(n // 2), len(best)))]
    parts.append(space.candidates(n - n // 2, rng))
    draws = np.concatenate(parts)
    return draws[nearest_distance(draws, X) <= radius]


def design_anchors(space: SearchSpace, size: int) -> np.ndarray:
    """The space's baselines [<= min(B, size), D] (projected onto its weight bounds where
    the search has constraints, as the baselines are), distinct by
    `MIN_DISTANCE`: the mixtures a user compares the answer with (uniform, token share).
    Run first, with the search's shared initialisation, they make the best observed run at
    least as good as the baselines as measured by the search itself. Before, a 16-run
    search whose model was too weak to trust answered with its luckiest run, which lost to
    uniform in every small real search measured (issue 11)."""
    kept = np.zeros((0, len(space.domains)))
    for x in space.baselines.values():
        if space.within(x)[0] and not near(kept, x).any():
            kept = np.vstack([kept, x])
    return kept[:max(size, 0)]


AXIAL_WEIGHT = 0.6   # an axial design point's weight on its domain (the others share the rest evenly)


def space_filling_design(space: SearchSpace, size: int, seed: int) -> np.ndarray:
    """`size` mixtures [size, D]: the baselines (`design_anchors`); then, when the design has
    room for all of them, one axial point per domain (`axial_points`); then points spread
    over the prior: k-means centroids of 64 x size draws of the prior's sampler, in
    farthest-first order (each the farthest, L1, from those before it), so that every
    prefix of the design is spread too. Centroids cover where the prior puts its mass
    evenly (iid draws clump, and 4 of 10 landed on one corner in a user's search), and,
    being means, stay off the simplex's corners, where a maximin design would put its
    first points."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    anchors = design_anchors(space, size)
    axial = axial_points(space)
    if size - len(anchors) >= len(axial) and len(axial):
        anchors = np.vstack([anchors, axial[nearest_distance(axial, anchors) >= MIN_DISTANCE]])
    spread = size - len(anchors)
    if spread <= 0:
        return anchors[:size]
    draws = space.candidates(64 * spread, np.random.default_rng([seed, spread]))
    with warnings.catch_warnings():   # narrow bounds: fewer distinct draws than centroids (novelty drops the rest)
        warnings.simplefilter("ignore", ConvergenceWarning)
        centroids = KMeans(n_clusters=spread, n_init=1, random_state=seed).fit(draws).cluster_centers_
    centroids = np.maximum(centroids, 0.0)
    return np.vstack([anchors, _farthest_first(centroids / centroids.sum(axis=1, keepdims=True), anchors)])


def axial_points(space: SearchSpace) -> np.ndarray:
    """One mixture per domain [<= D, D]: `AXIAL_WEIGHT` on it, the rest shared evenly,
    projected onto the weight bounds, the axial design of mixture experiments (Cornell,
    Experiments with Mixtures, 2002). Each measures what leaning on one domain does; the
    prior's draws seldom lean on a small domain, and in small real searches whose target
    was one domain's loss the best mixtures leaned on it (issue 11). A point the bounds
    move onto another's (a fixed domain's axis) is left out."""
    D = len(space.domains)
    if D < 2:
        return np.zeros((0, D))
    points = np.full((D, D), (1.0 - AXIAL_WEIGHT) / (D - 1))
    np.fill_diagonal(points, AXIAL_WEIGHT)
    points = space.onto_bounds(points)
    distinct = [i for i in range(D) if not near(points[:i], points[i]).any()]
    return points[distinct].reshape(-1, D)


def _farthest_first(points: np.ndarray, before: np.ndarray) -> np.ndarray:
    """points [m, D] reordered so that each is the farthest (L1) from `before` [k, D] and the
    points ahead of it (the first, without `before`, the farthest from the points' mean)."""
    chosen = np.asarray(before, dtype=np.float64).reshape(-1, points.shape[1])
    left, order = list(range(len(points))), []
    while left:
        reference = chosen if len(chosen) else points.mean(axis=0, keepdims=True)
        i = left[int(np.argmax(nearest_distance(points[left], reference)))]
        order.append(i)
        left.remove(i)
        chosen = np.vstack([chosen, points[i]])
    return points[order]


def initial_design(space: SearchSpace, history: History, n: int, rng: np.random.Generator, size: int, seed: int,
                   fidelity: str | None = None) -> list[Proposal]:
    """The next n points of the search's space-filling design of `size` mixtures (fixed by
    the search's seed and `seed`, whatever the batch size: points already run are skipped);
    past the design, or in pool mode (random unused table entries), prior draws. A design
    at a cheaper `fidelity` than the target's runs the baselines at the target first: the
    answer is compared with them there (`search.guard`), and each pairs with the baseline's
    cheap run for the fidelity gate."""
    if space.pool is not None:
        return pool_proposals(space, history, n, at_random(rng))
    fidelity = fidelity if fidelity is not None else space.target_fidelity
    first = []
    if fidelity != space.target_fidelity:
        anchors = design_anchors(space, len(space.baselines))
        first = [Proposal(to_mixture(space.domains, x), space.target_fidelity)
                 for x in anchors[nearest_distance(anchors, history.at_fidelity(space.target_fidelity).X)
                                  >= MIN_DISTANCE]]
    design = space_filling_design(space, size, int(np.random.SeedSequence([space.seed, seed]).generate_state(1)[0]))
    design = design[nearest_distance(design, history.at_fidelity(fidelity).X) >= MIN_DISTANCE]
    points = list(design[:n]) + list(space.candidates(max(n - len(design), 0), rng))
    return (first + [Proposal(to_mixture(space.domains, x), fidelity) for x in points])[:n]


def unmeasured_baselines(space: SearchSpace, history: History) -> list[str]:
    """The baselines (by name) with no run at the target fidelity: the answer was never
    compared with them where it is meant to hold."""
    at_target = history.at_fidelity(space.target_fidelity)
    return [name for name, x in space.baselines.items() if not near(at_target.X, x).any()]
