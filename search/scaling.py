"""Cheap runs extrapolated to the target fidelity: the scaling step of Data Mixing Laws'
nested pipeline (Ye et al. 2025, section 4), before the mixing law is fitted.

Each mixture is trained at every cheaper fidelity (its ladder). Along each fidelity input
u_f in [0, 1] (log model size, log tokens or log cost, 1 at the target: search.fidelity),
the mixture's loss follows a Chinchilla-form law (Hoffmann et al. 2022)

    L_g(u) = e_g + sum_f a_gf * exp(alpha_f * (1 - u_f)),      a_gf >= 0,

and its value at the target is L_g(1) = e_g + sum_f a_gf. A power law in the size or token
count is exactly this form in the log-scaled input. Data Mixing Laws fits the step law on
each training curve and then the size law, mixture by mixture; a proxy ladder has a few
final losses per mixture, not a curve, so here the exponents alpha_f are shared by every
mixture of the search and fitted jointly with each mixture's e_g and a_gf (Huber loss,
scipy's least_squares, the best of a few starts). A mixture that also has target-fidelity
runs (a baseline's ladder) keeps their mean, measured beats extrapolated, and its runs at
the target pin the shared exponents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.optimize import least_squares, nnls
from scipy.sparse import lil_matrix

from mixer.errors import MixerError
from search.fidelity import Fidelities
from search.history import History, MetricValues, same_mixture

EXPONENT_STARTS = (0.5, 1.5, 4.0)   # alpha_f tried first, in units of the log-scaled input
MAX_EXPONENT = 30.0


@dataclass(frozen=True)
class ScalingLaws:
    """e: [G] floors; a: [G, F] amplitudes; alpha: [F] exponents shared by the G mixtures."""

    e: np.ndarray
    a: np.ndarray
    alpha: np.ndarray

    def predict(self, groups: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The loss of mixture groups [n] at fidelity inputs u [n, F] -> [n]."""
        return self.e[groups] + (self.a[groups] * np.exp(self.alpha * (1.0 - u))).sum(axis=1)

    def at_target(self) -> np.ndarray:
        """[G] each mixture's loss at the target fidelity (u = 1)."""
        return self.e + self.a.sum(axis=1)


def fit_scaling_laws(u: np.ndarray, groups: np.ndarray, values: np.ndarray, huber_delta: float) -> ScalingLaws:
    """Laws of the runs' values [n] at fidelity inputs u [n, F], run i a point of mixture
    groups[i] (0..G-1); the start with the lowest Huber loss wins."""
    G, F = int(groups.max()) + 1, u.shape[1]
    best = None
    for start in EXPONENT_STARTS:
        alpha = np.full(F, start)
        e, a = _linear_start(u, groups, values, alpha, G)
        fit = least_squares(_residuals, np.concatenate([e, a.ravel(), alpha]), args=(u, groups, values, G, F),
                            bounds=_bounds(G, F), loss="huber", f_scale=huber_delta,
                            jac_sparsity=_sparsity(groups, G, F), method="trf", x_scale="jac")
        if best is None or fit.cost < best.cost:
            best = fit
    return _unpack(best.x, G, F)


def _unpack(theta: np.ndarray, G: int, F: int) -> ScalingLaws:
    return ScalingLaws(theta[:G], theta[G:G + G * F].reshape(G, F), theta[G + G * F:])


def _residuals(theta, u, groups, values, G, F):
    return _unpack(theta, G, F).predict(groups, u) - values


def _bounds(G: int, F: int) -> tuple[np.ndarray, np.ndarray]:
    low = np.concatenate([np.full(G, -np.inf), np.zeros(G * F), np.full(F, 1e-3)])
    high = np.concatenate([np.full(G, np.inf), np.full(G * F, np.inf), np.full(F, MAX_EXPONENT)])
    return low, high


def _sparsity(groups: np.ndarray, G: int, F: int) -> lil_matrix:
    """Run i depends on its mixture's e and a and on the shared exponents."""
    pattern = lil_matrix((len(groups), G + G * F + F), dtype=int)
    for i, g in enumerate(groups):
        pattern[i, g] = 1
        pattern[i, G + g * F:G + (g + 1) * F] = 1
        pattern[i, G + G * F:] = 1
    return pattern


def _linear_start(u, groups, values, alpha, G):
    """Given the exponents the law is linear: each mixture's floor and non-negative
    amplitudes by least squares (the floor shifted to keep nnls's signs)."""
    F = u.shape[1]
    e, a = np.zeros(G), np.zeros((G, F))
    shift = values.min() - 1.0
    for g in range(G):
        rows = groups == g
        basis = np.hstack([np.ones((rows.sum(), 1)), np.exp(alpha * (1.0 - u[rows]))])
        coef, _ = nnls(basis, values[rows] - shift)
        e[g], a[g] = coef[0] + shift, coef[1:]
    return e, a


@dataclass(frozen=True)
class Ladders:
    """How a search's mixtures stand on their ladders: mixtures [G, D] (distinct, by
    search.history.same_mixture), each run's group [n], and the fidelities each group has
    run at."""

    mixtures: np.ndarray
    groups: np.ndarray
    run_at: list[set[str | None]]

    def complete(self, fidelity: Fidelities) -> np.ndarray:
        """bool [G]: the mixture has a run at every cheaper fidelity."""
        rungs = set(cheap_labels(fidelity))
        return np.array([rungs <= have for have in self.run_at], dtype=bool)

    def missing(self, fidelity: Fidelities) -> list[tuple[np.ndarray, str | None]]:
        """(mixture, label) of every rung not yet run of a started ladder (one with a cheap
        run), cheapest first."""
        rungs = cheap_labels(fidelity)
        return [(x, label) for x, have in zip(self.mixtures, self.run_at) if have & set(rungs)
                for label in rungs if label not in have]


def cheap_labels(fidelity: Fidelities) -> list[str | None]:
    """The fidelities below the target, cheapest first: a mixture's ladder."""
    order = np.argsort(fidelity.costs, kind="stable")
    return [fidelity.labels[i] for i in order if fidelity.labels[i] != fidelity.target]


def ladders(history: History) -> Ladders:
    mixtures: list[np.ndarray] = []
    groups = np.empty(len(history), dtype=np.int64)
    run_at: list[set[str | None]] = []
    for i, x in enumerate(history.X):
        same = np.flatnonzero(same_mixture(np.array(mixtures), x)) if mixtures else []
        if len(same):
            groups[i] = same[0]
        else:
            groups[i] = len(mixtures)
            mixtures.append(x)
            run_at.append(set())
        run_at[groups[i]].add(history.fidelity[i])
    return Ladders(np.array(mixtures).reshape(-1, len(history.domains)), groups, run_at)


def check_ladder(fidelity: Fidelities) -> None:
    """A ladder must determine its law: every input varies among the cheap fidelities, and
    there are at least inputs + 2 of them (each mixture's floor and amplitudes, and a
    point that the shared exponents must explain)."""
    cheap = [fidelity.index(label) for label in cheap_labels(fidelity)]
    needed = fidelity.inputs.shape[1] + 2
    flat = [name for f, name in enumerate(fidelity.input_names) if np.ptp(fidelity.inputs[cheap, f]) == 0]
    if len(cheap) >= needed and not flat:
        return
    why = (f"the cheaper fidelities do not vary in {' or '.join(flat)}" if flat and len(cheap) > 1 else
           f"it has {len(cheap)} cheaper fidelit{'y' if len(cheap) == 1 else 'ies'}, needs {needed}")
    raise MixerError(f"mixing_law extrapolates each mixture from its runs at the cheaper fidelities to the target "
                     f"({fidelity.target}), but {why}; add fidelities along {' and '.join(fidelity.input_names)}")


class AtTarget(NamedTuple):
    history: History          # one row per mixture, at the target fidelity
    extrapolated: np.ndarray  # bool [rows]: the row's value comes from its ladder, not a target run


def extrapolated(history: History, fidelity: Fidelities, huber_delta: float) -> AtTarget:
    """The target-fidelity History a mixing law fits: one row per mixture with a measured
    target (the mean of its target runs) or a complete ladder (its extrapolated value of
    each metric, then the target they combine). Runs without per-metric values (a replayed
    table) extrapolate the target itself."""
    stand = ladders(history)
    at_target = np.array([label == fidelity.target for label in history.fidelity], dtype=bool)
    measured = np.array([fidelity.target in have for have in stand.run_at], dtype=bool)
    complete = stand.complete(fidelity)
    keep = measured | complete
    data = history.per_metric() or MetricValues(history.y[:, None], ["target"], np.ones(1), False)
    values = np.full((len(stand.mixtures), data.values.shape[1]), np.nan)
    for g in np.flatnonzero(measured):
        values[g] = data.values[at_target & (stand.groups == g)].mean(axis=0)
    if (complete & ~measured).any():   # every complete ladder informs the shared exponents
        fitted = np.flatnonzero(complete)
        runs = np.isin(stand.groups, fitted)
        renumbered = np.searchsorted(fitted, stand.groups[runs])
        u = fidelity.inputs[[fidelity.index(label) for label in np.array(history.fidelity, dtype=object)[runs]]]
        extrapolate = ~measured[fitted]
        for m in range(values.shape[1]):
            laws = fit_scaling_laws(u, renumbered, data.values[runs, m], huber_delta)
            values[fitted[extrapolate], m] = laws.at_target()[extrapolate]
    rows = np.flatnonzero(keep)
    y = data.combine(values[rows].T)
    per_metric = data.metrics != ["target"]   # kept in per_metric's orientation, which it reads back as is
    return AtTarget(History(history.domains, stand.mixtures[rows], y, [fidelity.target] * len(rows),
                            [f"mixture {g}" for g in rows], [None] * len(rows), [], history.costs,
                            data.metrics if per_metric else [], values[rows] if per_metric else None,
                            data.terms if per_metric else None, data.worst),
                    ~measured[rows])
