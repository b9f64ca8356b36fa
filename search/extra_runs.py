"""Runs outside a search's budget: a validation of its answer, baselines, replicates of its
best runs, transfer checks. Each is stored in the search with its role (store.RunRole),
so no reader tells them apart by id; they vary the initialisation and data order and never
feed the search's model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd

from mixer.mixture import Mixture
from search.backends.base import to_mixture
from search.evaluation import RunResult, RunStatus
from search.fidelity import split_proxy_label
from search.history import same_mixture
from search.runs import finished_runs, weight_matrix
from search.session import SearchSession
from search.state import SearchState
from store import RunRecord
from store.records import RunRole


FEW_PAIRS = 4   # fewer paired runs: a fresh seed's ± is at least one run's seed noise, and said to be loose


class ExtraRun(NamedTuple):
    run_id: str
    result: RunResult


def replicate_seed(search_seed: int, replicate: int) -> int:
    """Training seed of an extra run's replicate: shared by every mixture compared (paired
    seeds), and apart from the search's own run seeds (`search.proposing.run_seed`), so the
    best run is measured again, not replayed."""
    return int(np.random.SeedSequence([search_seed, 2**32 - 1, replicate]).generate_state(1)[0] % 2**31)


def evaluate_extra(session: SearchSession, mixtures: dict[str, Mixture], role: RunRole | dict[str, RunRole],
                   seeds: int = 1, fidelity: str | None = None, first_seed: int | dict[str, int] = 0,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, ExtraRun]:
    """Train extra mixtures outside the search's budget, at its fidelity or at `fidelity`
    (PRESET:TOKENS), each with `seeds` replicate seeds; `role`: of every run, or per label.
    Returns label -> run, where a label is the mixture's (id `<search>/<label>`, seed: the
    search's) or, with several seeds or a `first_seed` (of every mixture, or per label),
    `<label>/seed-<k>` (seed `replicate_seed(seed, k)`, k from `first_seed`). Finished ones
    are reused, so an interrupted call resumes. `progress(finished, total)` is told as each
    run ends."""
    spec, name = session.spec, session.record.name
    label_of_fidelity = fidelity or spec.fidelity_label
    preset, tokens = split_proxy_label(label_of_fidelity)
    firsts = first_seed if isinstance(first_seed, dict) else dict.fromkeys(mixtures, first_seed)
    plan = ({label: (label, m, spec.seed) for label, m in mixtures.items()} if seeds == 1 and not any(firsts.values())
            else {f"{label}/seed-{k}": (label, m, replicate_seed(spec.seed, k))
                  for label, m in mixtures.items() for k in range(firsts[label], firsts[label] + seeds)})
    runs = session.load().runs
    done = runs[runs.status == "done"].set_index("run_id")
    init_seed = spec.proxy.train.init_seed if spec.proxy is not None else None  # `proxy train --init-seed`
    records, reused = [], {}
    for label, (mixture_label, mixture, seed) in plan.items():
        run_id = f"{name}/{label}"
        if run_id in done.index and done.loc[run_id].mixture == mixture.as_dict():
            reused[label] = ExtraRun(run_id, RunResult(RunStatus.done, values=dict(done.loc[run_id].final_values)))
            continue
        run_role = role[mixture_label] if isinstance(role, dict) else role
        records.append(RunRecord(id=run_id, search_id=session.record.id, mixture=mixture.as_dict(),
                                 status="queued", role=run_role, fidelity=label_of_fidelity, preset=preset,
                                 tokens=tokens, seed=seed, init_seed=init_seed))
    told = (lambda _: progress(sum(r.status in ("done", "failed") for r in records), len(records))) if progress else None
    results = session.evaluate(records, told)
    return {label: reused.get(label) or ExtraRun(f"{name}/{label}", results[f"{name}/{label}"]) for label in plan}


def replicate_best(session: SearchSession, state: SearchState) -> None:
    """The `budget.replicates` best own runs at the target fidelity, the k-th trained again
    with the k-th replicate seed (initialisation and data order):
    `<search>/replicate/<run>/seed-k`, k from 1. Each starts from its own initialisation, so
    their offsets from the search's runs (`init_offsets`) span initialisations, not one."""
    at_target = state.at_target
    best = np.argsort(at_target.y, kind="stable")[:session.spec.budget.replicates]
    labels = [f"replicate/{at_target.run_ids[i].rsplit('/', 1)[-1]}" for i in best]
    chosen = {label: to_mixture(at_target.domains, at_target.X[i]) for label, i in zip(labels, best)}
    firsts = {label: k for k, label in enumerate(labels, start=1)}
    evaluate_extra(session, chosen, RunRole.replicate, seeds=1, first_seed=firsts)


def other_init_runs(state: SearchState) -> pd.DataFrame:
    """The finished replicate and baseline runs at the target fidelity that started from
    another initialisation than the search's own runs (which share the search's seed)."""
    runs, spec = state.runs, state.setup.spec
    extra = finished_runs(runs[runs.role.isin([RunRole.replicate.value, RunRole.baseline.value])])
    if spec is not None and spec.proxy is not None:
        extra = extra[extra.fidelity == spec.fidelity_label]
    init = extra.init_seed.astype("Int64").fillna(extra.seed.astype("Int64"))
    return extra[(init != (spec.seed if spec is not None else None)).fillna(True).to_numpy(dtype=bool)]


def fresh_seed_values(state: SearchState, mixture: dict[str, float]) -> np.ndarray:
    """The targets (user's orientation) of `other_init_runs` of `mixture`."""
    extra, domains = other_init_runs(state), state.setup.space.domains
    if extra.empty:
        return np.zeros(0)
    same = same_mixture(weight_matrix(extra.mixture, domains), np.array([float(mixture.get(d, 0.0)) for d in domains]))
    return extra.target_value.to_numpy(dtype=np.float64)[same]


def init_offsets(state: SearchState) -> np.ndarray:
    """d [pairs], minimise orientation: for each finished extra run (a replicate or a
    baseline's replicate seed) at the target fidelity that started from another
    initialisation than the search's own runs, the own run of the same mixture minus it.
    The search's runs share one initialisation (search.proposing); d measures that
    initialisation's offset from a fresh seed's, plus the seed noise of both runs."""
    at_target, setup = state.at_target, state.setup
    extra = other_init_runs(state)
    d = []
    for x, value in zip(weight_matrix(extra.mixture, at_target.domains), extra.target_value):
        original = np.flatnonzero(same_mixture(at_target.X, x))
        if len(original):
            d.append(at_target.y[original[0]] - setup.target.loss(float(value)))
    return np.array(d, dtype=np.float64)


def seed_noise(state: SearchState) -> dict | None:
    """The seed noise from the pairs of `init_offsets`: the std of one run's target,
    sqrt(mean(d^2) / 2); None without pairs."""
    d = init_offsets(state)
    if not len(d):
        return None
    return {"std": float(np.sqrt(np.mean(np.square(d)) / 2)), "pairs": len(d)}


def shown_value(predicted: float | None, predicted_std: float | None, evidence: dict) -> tuple[float | None, float]:
    """The value (user's orientation) and ± an answer is shown with, before a fresh seed's
    offset: its prediction, or, from a backend without a model (random), its best run's
    measured value with no ± of its own."""
    if predicted is not None:
        return predicted, predicted_std or 0.0
    return evidence.get("best_observed"), 0.0


def fresh_seed(predicted: float, predicted_std: float, d: np.ndarray) -> tuple[float, float] | None:
    """What a fresh seed would measure at a mixture the model predicts `predicted` ±
    `predicted_std` (minimise orientation), from the pairs `d` of `init_offsets`: the
    prediction less the search's initialisation offset (mean d), its std widened by the
    pairs' spread (their variance; one pair: its square) and the offset's own uncertainty.
    With fewer than FEW_PAIRS pairs, whose variance rests on under 3 degrees of freedom
    (two pairs that happen to agree say little), the widening is at least one run's
    `seed_noise`; not with more, since that noise's mean square holds the offset the shift
    has already removed (benchmarks/README.md, "Fresh-seed coverage"). None without pairs."""
    if not len(d):
        return None
    widening = (float(np.var(d, ddof=1)) if len(d) > 1 else float(d[0] ** 2)) * (1 + 1 / len(d))
    if len(d) < FEW_PAIRS:
        widening = max(widening, float(np.mean(np.square(d))) / 2)
    return float(predicted - d.mean()), float(np.sqrt(predicted_std ** 2 + widening))
