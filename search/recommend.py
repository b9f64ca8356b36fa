"""A search's answer: the backend's pick through the guard (search.guard), or its best run
when it has too few runs for a model; then, on the way out, in the user's orientation.
`oriented` is the one place an answer's values leave minimise orientation.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mixer.errors import MixerError
from search.backends import Recommendation
from search.backends.base import Model, TooFewRuns, to_mixture, unmeasured_baselines
from search.guard import guard
from search.history import History
from search.state import SearchSetup
from search.targets import Target

# evidence values that are target values (minimise orientation inside, user's outside)
_TARGET_VALUED = ("best_observed", "predicted_at_best_run")


def recommend_from(setup: SearchSetup, model: Model) -> Recommendation:
    """The guarded recommendation from a model of the search's own runs, in the user's orientation."""
    history = model.history
    if len(history) == 0:
        raise MixerError(f"search '{setup.name}' has no finished runs to recommend from")
    space = setup.space
    try:
        rec = guard(model, space.target_fidelity, baselines=space.baselines)
    except TooFewRuns as exc:  # a budget smaller than the model needs: its best run, and why
        rec = best_run(history.at_fidelity(space.target_fidelity), str(exc))
        if rec is None:
            raise
    unmeasured = unmeasured_baselines(space, history)
    if unmeasured:
        rec = replace(rec, evidence={**rec.evidence, "baselines_unmeasured": unmeasured})
    return oriented(within_bounds(rec, setup), setup.target)


def within_bounds(rec: Recommendation, setup: SearchSetup) -> Recommendation:
    """`rec` with the weight bounds it sits on in its evidence (`binding`, where the search
    has bounds); an answer outside them is a backend's bug, never returned."""
    space = setup.space
    x = rec.mixture.vector(space.domains)
    if not space.within(x)[0]:
        raise RuntimeError(f"backend {setup.record.backend} recommended {rec.mixture.as_dict()}, outside the "
                           "search's weight bounds")
    if space.bounds is None or not space.bounds.active:
        return rec
    return replace(rec, evidence={**rec.evidence, "binding": space.bounds.binding(x)})


def oriented(rec: Recommendation, target: Target) -> Recommendation:
    """`rec` with its target values (predicted, and those in its evidence) in the user's
    orientation; stds and gains are orientation-free."""
    evidence = dict(rec.evidence)
    for key in _TARGET_VALUED:
        if key in evidence:
            evidence[key] = float(target.value_of(evidence[key]))
    if "model_pick" in evidence:
        evidence["model_pick"] = {**evidence["model_pick"],
                                  "predicted": float(target.value_of(evidence["model_pick"]["predicted"]))}
    predicted = None if rec.predicted is None else float(target.value_of(rec.predicted))
    return replace(rec, predicted=predicted, evidence=evidence)


def best_run(at_target: History, reason: str) -> Recommendation | None:
    """The best run at the target fidelity as the answer, without a model (None: no such run)."""
    if not len(at_target):
        return None
    best = int(np.argmin(at_target.y))
    evidence = {"rule": "best-run:too-few-runs", "reason": reason, "best_run": at_target.run_ids[best],
                "best_observed": float(at_target.y[best])}
    return Recommendation(to_mixture(at_target.domains, at_target.X[best]), None, None, evidence)


def gains_over_baselines(setup: SearchSetup, model: Model, rec: Recommendation) -> dict[str, float]:
    """The model's predicted gain of the (oriented) recommendation over each baseline
    (positive: the recommendation is predicted better), in target units."""
    predicted, _ = model.predict(np.array(list(setup.space.baselines.values())))
    rec_loss = setup.target.loss(rec.predicted)
    return {name: float(p - rec_loss) for name, p in zip(setup.space.baselines, predicted)}
