"""The log-linear mixing law: fit, exact optimum, and the `mixing_law` backend."""

import numpy as np
import pytest

from mixer.bounds import WeightBounds
from mixer import MixerError
from search.backends import make_backend
from search.history import History
from search.law import LawFitConfig, bootstrap_weights, fit_laws
from search.law_optimum import LawProgram
from search.space import SearchSpace

D = 5
NAMES = [f"d{i}" for i in range(D)]


def known_laws(seed: int = 0):
    """Per-domain laws with centred t, as the fit reports them: c [D], b [D], t [D, D]."""
    rng = np.random.default_rng(seed)
    t = rng.normal(0, 1, (D, D))
    return rng.uniform(1.0, 2.0, D), rng.normal(0, 0.3, D), t - t.mean(axis=1, keepdims=True)


def law_values(X, c, b, t):
    return c[None] + np.exp(b[None] + X @ t.T)


def history_of(X, values, with_values=True):
    terms = np.full(D, 1.0 / D)
    extra = dict(metrics=NAMES, values=values, terms=terms) if with_values else {}
    return History(NAMES, X, values @ terms, [None] * len(X), [f"r{i}" for i in range(len(X))], [None] * len(X),
                   **extra)


def test_the_fit_recovers_known_parameters_from_noiseless_runs():
    c, b, t = known_laws()
    X = np.random.default_rng(1).dirichlet(np.ones(D), 40)
    laws = fit_laws(X, law_values(X, c, b, t), cfg=LawFitConfig(l2=0.0))
    assert np.abs(laws.c[0] - c).max() < 1e-3
    assert np.abs(laws.b[0] - b).max() < 1e-3
    assert np.abs(laws.t[0] - t).max() < 1e-3


def test_bootstrap_refits_spread_with_noise_and_skip_unmeasured_values():
    c, b, t = known_laws()
    rng = np.random.default_rng(2)
    X = rng.dirichlet(np.ones(D), 30)
    Y = law_values(X, c, b, t) + rng.normal(0, 0.01, (30, D))
    Y[:5, 0] = np.nan                      # domain 0 unmeasured in 5 runs: its law fits the other 25
    laws = fit_laws(X, Y, bootstrap_weights(30, 8, 0))
    assert laws.c.shape == (8, D) and np.isfinite(laws.c).all()
    assert laws.predict(X).std(axis=0).mean() > 1e-4      # refits on resamples differ
    assert np.abs(laws.predict(X)[0].T - law_values(X, c, b, t)).mean() < 0.02


def test_the_optimum_respects_every_cap_sums_to_one_and_beats_sampling():
    c, b, t = known_laws(3)
    prior = np.full(D, 1.0 / D)
    caps = np.array([0.5, 0.3, 0.3, 0.25, 0.2])
    p = LawProgram(prior, WeightBounds.of(NAMES, caps=caps), kl_reg=0.05, n_laws=D).solve(b, t, np.full(D, 1.0 / D))
    assert abs(p.sum() - 1) < 1e-9 and (p >= 0).all() and (p <= caps + 1e-7).all()
    draws = np.random.default_rng(0).dirichlet(np.ones(D), 200_000)
    draws = draws[(draws <= caps).all(axis=1)]

    def objective(P):
        return law_values(P, c, b, t).mean(axis=1) + 0.05 * (P * np.log(np.maximum(P, 1e-12) / prior)).sum(axis=1)

    assert objective(p[None])[0] <= objective(draws).min() + 1e-7


def test_caps_below_one_are_an_error():
    with pytest.raises(MixerError, match="allow 0.9 in all < 1"):
        WeightBounds.of(NAMES, caps=np.full(D, 0.18))


def test_the_worst_case_optimum_is_the_epigraph_of_the_largest_law():
    """`--target worst`: the program minimises max_m u_m(p) exactly, floors included; no
    prior draw does better."""
    c, b, t = known_laws(3)
    prior = np.full(D, 1.0 / D)
    p = LawProgram(prior, None, kl_reg=0.0, n_laws=D, worst=True).solve(b, t, np.ones(D), c)
    draws = np.random.default_rng(0).dirichlet(np.ones(D), 100_000)
    worst = lambda P: law_values(P, c, b, t).max(axis=1)  # noqa: E731
    assert worst(p[None])[0] <= worst(draws).min() + 1e-6
    assert worst(p[None])[0] < law_values(p[None], c, b, t).mean() + 1.0  # a real mixture, not a corner


def space_of(caps=None):
    return SearchSpace(NAMES, prior=np.full(D, 1.0 / D), bounds=None if caps is None else WeightBounds.of(NAMES, caps=caps))


@pytest.mark.slow  # bootstrap laws and the convex program (the fast lane stays under a minute)
def test_the_backend_fits_one_law_per_domain_and_recommends_the_laws_optimum():
    c, b, t = known_laws(4)
    rng = np.random.default_rng(5)
    X = rng.dirichlet(np.ones(D), 16)
    history = history_of(X, law_values(X, c, b, t) + rng.normal(0, 0.003, (16, D)))
    backend = make_backend("mixing_law", {"bootstrap": 8}, space_of(np.full(D, 0.6)))
    rec = backend.recommend(history)
    assert rec.evidence["laws"] == NAMES and rec.evidence["solver"] == "convex program"
    assert set(rec.evidence["interaction"]) == set(NAMES)
    chosen = rec.mixture.vector(NAMES)
    true_at = law_values(chosen[None], c, b, t).mean()
    assert true_at < history.y.min()                       # better than every run it saw
    assert abs(rec.predicted - true_at) < 3 * rec.predicted_std
    assert backend.quality(history).cv_spearman > 0.9


def test_without_per_domain_values_one_law_fits_the_target():
    c, b, t = known_laws(4)
    X = np.random.default_rng(6).dirichlet(np.ones(D), 16)
    rec = make_backend("mixing_law", {"bootstrap": 4}, space_of()).recommend(history_of(X, law_values(X, c, b, t),
                                                                                         with_values=False))
    assert rec.evidence["laws"] == ["target"]


def test_a_target_that_rewards_a_domain_loss_is_not_convex_and_says_so():
    c, b, t = known_laws(4)
    X = np.random.default_rng(7).dirichlet(np.ones(D), 16)
    values = law_values(X, c, b, t)
    terms = np.array([1.0, -0.5, 0.0, 0.0, 0.0])             # minimise d0 - 0.5 d1
    history = History(NAMES, X, values @ terms, [None] * 16, [f"r{i}" for i in range(16)], [None] * 16,
                      metrics=NAMES, values=values, terms=terms)
    rec = make_backend("mixing_law", {"bootstrap": 4, "n_candidates": 5000}, space_of()).recommend(history)
    assert rec.evidence["solver"].startswith("candidate search")


def test_a_batch_is_diverse_thompson_style():
    c, b, t = known_laws(4)
    X = np.random.default_rng(8).dirichlet(np.ones(D), 12)
    history = history_of(X, law_values(X, c, b, t) + np.random.default_rng(9).normal(0, 0.02, (12, D)))
    proposals = make_backend("mixing_law", {"bootstrap": 8}, space_of()).propose(history, 6, np.random.default_rng(0))
    P = np.array([p.mixture.vector(NAMES) for p in proposals])
    assert len(P) == 6 and np.allclose(P.sum(axis=1), 1)
    gaps = np.abs(P[:, None] - P[None]).sum(axis=2)[np.triu_indices(6, 1)]
    assert gaps.min() > 0.02


@pytest.mark.parametrize("prior, needle", [("nope=1", "unknown domain(s) in mixture: nope"),
                                           ("half", "mixing_law prior 'half'")])
def test_a_bad_prior_is_one_clear_error(prior, needle):
    with pytest.raises(MixerError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        make_backend("mixing_law", {"prior": prior}, space_of())


@pytest.mark.slow  # both law forms with their folds (the fast lane stays under a minute)
def test_the_form_with_the_lower_out_of_fold_error_is_the_one_fitted():
    """Data Mixing Laws' two forms: a law per domain loss combined (explicit), or one law on
    the target (implicit). Each domain's loss here is a law, their mean is not: the explicit
    form wins out of fold, and whichever is chosen is the one with the lower error."""
    from search.backends.mixing_law import MixingLawConfig, fit, fit_form, law_forms

    c, b, t = known_laws(4)
    rng = np.random.default_rng(5)
    X = rng.dirichlet(np.ones(D), 24)
    history = history_of(X, law_values(X, c, b, t) + rng.normal(0, 0.003, (24, D)))
    cfg = MixingLawConfig(bootstrap=4)
    errors = {tuple(form.metrics): fit_form(cfg, history, form).quality.cv_rmse for form in law_forms(history)}
    chosen = fit(cfg, history)
    assert errors[tuple(NAMES)] < errors[("target",)]
    assert chosen.metrics == NAMES and chosen.quality.cv_rmse == min(errors.values())
