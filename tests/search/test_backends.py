import re

import numpy as np
import pytest

from mixer.bounds import WeightBounds
from mixer import MixerError
from search.backends import backend_config, make_backend, parse_options
from search.history import History
from tests.conftest import DOMAINS, OPTIMUM, make_history, make_space, truth

FAST = {"n_candidates": 20_000, "screen_top": 500, "n_models": 3}


@pytest.mark.parametrize("name, options", [("random", {}), ("regmix", FAST), ("bayesopt", {"n_candidates": 256}),
                                           ("mixing_law", {"bootstrap": 4}), ("climb", {"n_candidates": 5000})])
def test_every_proposal_is_a_valid_mixture(name, options):
    backend = make_backend(name, options, make_space())
    for history in (History.empty(DOMAINS), make_history(30)):
        proposals = backend.propose(history, 5, np.random.default_rng(1))
        assert len(proposals) == 5
        for p in proposals:
            w = p.mixture.vector(DOMAINS)
            assert (w >= 0).all() and abs(w.sum() - 1) < 1e-9 and p.fidelity == "f"


def test_regmix_recommends_near_the_optimum_with_calibrated_prediction():
    backend = make_backend("regmix", FAST, make_space())
    history = make_history(60)
    rec = backend.recommend(history)
    chosen = rec.mixture.vector(DOMAINS)
    assert np.abs(chosen - OPTIMUM).sum() < 0.25
    assert truth(chosen[None])[0] < np.sort(history.y)[3]  # better than all but the best few runs
    assert abs(rec.predicted - truth(chosen[None])[0]) < 0.2 and rec.predicted_std >= 0
    assert rec.evidence["runs"] == 60 and backend.quality(history).cv_spearman > 0.7


def test_a_weak_regmix_model_keeps_to_its_space_filling_design():
    """Runs whose targets are noise alone cannot be trusted to a model, so the next runs
    are the next points of the budget-sized design, as RegMix spreads its runs before one
    fit; the design keeps off the corners."""
    from dataclasses import replace

    from search.backends.base import initial_design

    space = replace(make_space(), budget_runs=16)
    backend = make_backend("regmix", FAST, space)
    rng = np.random.default_rng(0)
    design = np.array([p.mixture.vector(DOMAINS) for p in
                       initial_design(space, History.empty(DOMAINS), 16, rng, 16, backend.config.seed)])
    history = History(DOMAINS, design[:10], 3.0 + rng.normal(0, 0.02, 10), ["f"] * 10,
                      [f"r{i}" for i in range(10)], [None] * 10)
    assert backend.quality(history).cv_spearman < 0.5
    proposed = [p.mixture.vector(DOMAINS) for p in backend.propose(history, 3, rng)]
    assert np.allclose(proposed, design[10:13]) and design.max() < 0.9


def test_a_trusted_regmix_model_proposes_within_reach_of_the_best_runs():
    """A loss linear in the weights, best at the corner a: a fit on 40 runs away from the
    corners trusts itself, and its minimum over the simplex is the corner. Within the trust
    region each proposal moves at most `trust_radius` of weight from a measured run."""
    X = np.random.default_rng(3).dirichlet(np.full(4, 4.0), size=40)
    history = History(DOMAINS, X, X @ np.array([0.0, 1.0, 2.0, 3.0]), ["f"] * 40, [f"r{i}" for i in range(40)],
                      [None] * 40)
    bounded = make_backend("regmix", FAST, make_space())
    assert bounded.quality(history).cv_spearman > 0.9
    from search.backends.base import nearest_distance

    proposed = np.array([p.mixture.vector(DOMAINS) for p in bounded.propose(history, 4, np.random.default_rng(0))])
    assert nearest_distance(proposed, X).max() <= 0.5 and proposed[:, 0].max() > X[:, 0].max()  # a step towards a
    unbounded = make_backend("regmix", {**FAST, "trust_radius": 0}, make_space())
    proposed = np.array([p.mixture.vector(DOMAINS) for p in unbounded.propose(history, 4, np.random.default_rng(0))])
    assert proposed[:, 0].min() > 0.9  # straight to the corner, far from every run


def test_trust_region_candidates_lie_within_reach_of_a_measured_run():
    from search.backends.base import nearest_distance, trust_region_candidates

    space, measured = make_space(), make_history(5)
    draws = trust_region_candidates(space, measured.X, measured.y, 2000, np.random.default_rng(0), radius=0.3)
    assert 500 < len(draws) <= 2000 and nearest_distance(draws, measured.X).max() <= 0.3
    assert np.allclose(draws.sum(axis=1), 1.0)
    best = measured.X[np.argmin(measured.y)]
    assert (nearest_distance(draws, best[None, :]) <= 0.3).mean() > 0.1  # the best run's neighbourhood is drawn


def test_regmix_proposals_improve_on_random_ones():
    history = make_history(40)
    regmix = make_backend("regmix", FAST, make_space()).propose(history, 8, np.random.default_rng(2))
    rand = make_backend("random", {}, make_space()).propose(history, 8, np.random.default_rng(2))
    score = lambda ps: truth(np.array([p.mixture.vector(DOMAINS) for p in ps])).mean()  # noqa: E731
    assert score(regmix) < score(rand) - 0.1


@pytest.mark.parametrize("name", ["random", "regmix", "bayesopt", "mixing_law", "climb"])
def test_pool_mode_picks_unused_entries_once(name):
    space = make_space(pool=True)
    backend = make_backend(name, FAST if name == "regmix" else {}, space)
    history = History(DOMAINS, space.pool.X[:10], truth(space.pool.X[:10]), ["f"] * 10,
                      [f"r{i}" for i in range(10)], [f"p{i}" for i in range(10)], pending_keys=["p10"])
    proposals = backend.propose(history, 20, np.random.default_rng(0))
    keys = [p.pool_key for p in proposals]
    assert len(set(keys)) == 20 and not set(keys) & {f"p{i}" for i in range(11)}
    for p in proposals:
        assert np.allclose(p.mixture.vector(DOMAINS), space.pool.X[int(p.pool_key[1:])])


def test_random_recommends_its_best_run():
    history = make_history(20)
    rec = make_backend("random", {}, make_space()).recommend(history)
    assert np.allclose(rec.mixture.vector(DOMAINS), history.X[np.argmin(history.y)])


def test_options_are_typed_and_checked_at_creation():
    cfg = backend_config("regmix", parse_options(["top_k=50", "regressor=linear", "n_candidates=1e5"]))
    assert cfg.top_k == 50 and cfg.regressor.value == "linear" and cfg.n_candidates == 100_000
    with pytest.raises(MixerError, match="unknown backend 'gp'"):
        backend_config("gp", {})
    with pytest.raises(MixerError, match="has no option depth"):
        backend_config("regmix", {"depth": "3"})
    with pytest.raises(MixerError, match="regmix.top_k expects int, got 'many'"):
        backend_config("regmix", {"top_k": "many"})
    with pytest.raises(MixerError, match="regmix.top_k expects int, got '2.7'"):
        backend_config("regmix", {"top_k": "2.7"})
    choices = "'auto' | 'lightgbm' | 'ridge' | 'linear'"
    with pytest.raises(MixerError, match=re.escape(f"regressor expects {choices}, got 'tree'")):
        backend_config("regmix", {"regressor": "tree"})
    with pytest.raises(MixerError, match="expected KEY=VALUE"):
        parse_options(["top_k"])
    with pytest.raises(MixerError, match="regmix trust_radius must be >= 0 .0: no trust region., got -0.5"):
        backend_config("regmix", {"trust_radius": "-0.5"})


def test_a_design_with_room_for_every_axis_leans_on_each_domain_once():
    from dataclasses import replace

    from search.backends.base import AXIAL_WEIGHT, space_filling_design

    space = replace(make_space(), baselines={"uniform": np.full(4, 0.25)})
    design = space_filling_design(space, 8, seed=0)
    assert np.allclose(design[0], 0.25)
    axial = design[1:5]
    assert np.allclose(np.sort(axial.max(axis=1)), AXIAL_WEIGHT) and sorted(axial.argmax(axis=1)) == [0, 1, 2, 3]
    assert np.allclose(np.sort(axial, axis=1)[:, :3], (1 - AXIAL_WEIGHT) / 3)
    small = space_filling_design(space, 4, seed=0)  # no room for all four axes: centroids only
    assert not np.isclose(small.max(axis=1), AXIAL_WEIGHT).any()
    capped = replace(space, bounds=WeightBounds.of(DOMAINS, caps=np.array([0.5, 1.0, 1.0, 1.0])))  # a cannot take 0.6: its axis stops at its cap
    assert np.isclose(space_filling_design(capped, 8, seed=0)[1:5, 0].max(), 0.5)


def test_initial_design_is_fixed_by_the_search_seed_spread_out_and_off_the_corners():
    from dataclasses import replace

    from search.backends.base import initial_design

    space = make_space()
    vectors = lambda ps: np.array([p.mixture.vector(DOMAINS) for p in ps])  # noqa: E731
    design = vectors(initial_design(space, History.empty(DOMAINS), 6, np.random.default_rng(0), 6, 0))
    half = vectors(initial_design(space, History.empty(DOMAINS), 3, np.random.default_rng(9), 6, 0))
    assert np.allclose(design[:3], half)  # the same design whatever the batch and round
    done = History(DOMAINS, half, truth(half), ["f"] * 3, ["r0", "r1", "r2"], [None] * 3)
    rest = vectors(initial_design(space, done, 3, np.random.default_rng(1), 6, 0))
    assert np.allclose(rest, design[3:])  # points already run are skipped
    other = vectors(initial_design(replace(space, seed=1), History.empty(DOMAINS), 6, np.random.default_rng(0), 6, 0))
    assert not np.allclose(other, design)
    distances = np.abs(design[:, None] - design[None]).sum(axis=2) + np.eye(6) * 9
    assert distances.min() > 0.1 and design.max() < 0.9


def test_the_design_starts_with_the_baselines_that_respect_the_caps():
    from dataclasses import replace

    from search.backends.base import space_filling_design

    uniform, share = np.full(4, 0.25), np.array([0.55, 0.25, 0.15, 0.05])
    space = replace(make_space(), baselines={"uniform": uniform, "token-share": share})
    design = space_filling_design(space, 6, 0)
    assert np.allclose(design[0], uniform) and np.allclose(design[1], share)
    assert len(design) == 6 and np.abs(design[2:, None] - design[None, :2]).sum(axis=2).min() > 0.02
    assert np.allclose(space_filling_design(space, 1, 0), [uniform])
    capped = replace(space, bounds=WeightBounds.of(DOMAINS, caps=np.array([0.5, 1.0, 1.0, 1.0])))  # token share repeats domain 0 too often
    assert np.allclose(space_filling_design(capped, 6, 0)[0], uniform)
    assert np.abs(space_filling_design(capped, 6, 0) - share).sum(axis=1).min() > 0.02
    same = replace(space, baselines={"uniform": uniform, "token-share": uniform + 1e-4 * np.array([1, -1, 0, 0])})
    assert np.abs(space_filling_design(same, 6, 0)[1] - uniform).sum() > 0.02  # one anchor, not two


def test_a_proxy_search_runs_uniform_and_the_token_share_first(tmp_path):
    """The real proxy context gives the space its baselines (no training: the design only)."""
    from mixer.domain import list_domains
    from mixer.ingest import IngestConfig, ingest_domain
    from mixer.tokenizers import ByteTokenizer
    from mixer.workspace import open_workspace
    from proxies.config import TrainConfig
    from search import evaluators
    from search.spec import ProxySpec, SearchSpec
    from tests.conftest import synthetic_documents

    ws = open_workspace(tmp_path / "ws")
    for i, (name, n) in enumerate([("alpha", 300), ("beta", 120), ("gamma", 60)]):
        ingest_domain(ws.domains_dir, name, synthetic_documents(i, n, "abc xyz\n"), ByteTokenizer(),
                      IngestConfig(min_val_docs=4))
    metas = {m.name: m for m in list_domains(ws.domains_dir)}
    names = sorted(metas)
    tokens = np.array([metas[n].n_tokens for n in names], dtype=float)
    spec = SearchSpec(name="s", backend="regmix",
                      proxy=ProxySpec(domains=names, train=TrainConfig(tokens=4096, seq_len=32, batch_size=4)))
    context = evaluators.build_space(ws, spec)
    first = [p.mixture.vector(names) for p in make_backend("regmix", {}, context.space).propose(
        History.empty(names), 2, np.random.default_rng(0))]
    assert np.allclose(first[0], np.full(len(names), 1 / len(names)))
    assert np.allclose(first[1], tokens / tokens.sum())


def test_an_unknown_backend_is_a_mixer_error_not_a_key_error():
    with pytest.raises(MixerError, match="unknown backend 'gp'"):
        make_backend("gp", {}, make_space())


def test_climb_splits_the_budget_4_2_1_into_rounds_no_larger_than_their_predictors_runs():
    from search.backends.climb import phase_sizes, plan_rounds

    assert phase_sizes(112, [4, 2, 1]) == [64, 32, 16] and phase_sizes(10, [4, 2, 1]) == [6, 3, 1]
    plan = plan_rounds(112, [4, 2, 1], first=4)
    assert [r.size for r in plan] == [4, 4, 8, 16, 32, 32, 16] and [r.phase for r in plan] == [0] * 5 + [1, 2]
    done = np.cumsum([0] + [r.size for r in plan])[:-1]
    assert all(r.size <= max(seen, 4) for r, seen in zip(plan, done))


def test_climb_fixes_each_rounds_model():
    space = make_space()
    space.budget_runs = 42                                   # rounds of 4, 4, 8, 8 (phase 24), 12, 6
    climb = make_backend("climb", {"n_candidates": 5000, "regressor": "ridge"}, space)
    round_1 = make_history(24)
    whole = climb.propose(round_1, 4, np.random.default_rng(5))
    P = np.array([p.mixture.vector(DOMAINS) for p in whole])
    assert np.abs(P[:, None] - P[None]).sum(axis=2)[np.triu_indices(4, 1)].min() >= 0.05
    assert truth(P).mean() < np.sort(truth(round_1.X))[:4].mean() + 0.05    # as good as round 1's best four
    # two runs into round 2, the round's model still has seen round 1 only: the next two
    # proposals are the round's 3rd and 4th, whatever the two runs measured
    done = round_1
    for x in P[:2]:
        done = done.append(x, 99.0, "f", "r")
    later = climb.propose(done, 2, np.random.default_rng(7))
    assert np.allclose([p.mixture.vector(DOMAINS) for p in later], P[2:])


def test_the_regmix_paper_preset_is_regmix_notebook_setting_with_early_stopping():
    from search.backends.regmix import RegMixConfig, RegMixModel, Regressor

    cfg = RegMixConfig(preset="regmix-paper")
    assert (cfg.regressor, cfg.n_models, cfg.n_estimators, cfg.learning_rate, cfg.num_leaves, cfg.subsample,
            cfg.early_stopping) == (Regressor.lightgbm, 1, 1000, 0.01, 31, 1.0, 3)
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(4), 200)
    y = X @ np.array([1.0, 2.0, 3.0, 4.0]) + 0.01 * rng.standard_normal(200)
    model = RegMixModel(cfg, cfg.regressor).fit(X, y)
    assert 0 < model.models[0].best_iteration_ < 1000              # stopped on the held-out eighth
    assert np.corrcoef(model.predict(X)[0], y)[0, 1] > 0.9


def test_an_unknown_regmix_preset_is_refused_with_the_choices():
    from mixer.errors import MixerError
    from search.backends import backend_config

    with pytest.raises(MixerError, match="regmix-paper"):
        backend_config("regmix", {"preset": "olmix"})


def per_loss_history(n: int, worst: bool = False) -> History:
    """Runs whose target combines each domain's own loss, 2 + 3 (w_d - 0.25)^2 - w_d: the
    mean of the four (or their largest), with the per-loss values a proxy run stores."""
    X = np.random.default_rng(3).dirichlet(np.ones(4), size=n)
    values = 2.0 + 3 * (X - 0.25) ** 2 - X
    terms = np.full(4, 1.0 if worst else 0.25)
    y = values.max(axis=1) if worst else values @ terms
    return History(DOMAINS, X, y, ["f"] * n, [f"r{i}" for i in range(n)], [None] * n,
                   metrics=list(DOMAINS), values=values, terms=terms, worst=worst)


@pytest.mark.parametrize("worst", [False, True])
def test_regmix_models_each_loss_of_a_combined_target_and_combines_them_as_the_target_does(worst):
    from search.backends.regmix import MetricModels

    history = per_loss_history(40, worst)
    fit = make_backend("regmix", {**FAST, "regressor": "ridge"}, make_space()).fit(history)
    model = fit.fitted.model
    assert isinstance(model, MetricModels) and len(model.models) == 4
    X = np.random.default_rng(4).dirichlet(np.ones(4), size=50)
    per_loss = np.stack([m.members(X) for m in model.models], axis=1)           # [members, 4, 50]
    expected = (per_loss.max(axis=1) if worst else per_loss.mean(axis=1)).mean(axis=0)
    assert np.allclose(fit.predict(X)[0], expected)
    assert fit.recommend().evidence["models"] == DOMAINS
    assert fit.quality().out_of_fold is not None and fit.quality().cv_spearman > 0.5


def test_regmix_per_metric_off_or_without_per_loss_values_models_the_target_itself():
    from search.backends.regmix import RegMixModel

    history = per_loss_history(40)
    assert isinstance(make_backend("regmix", {**FAST, "per_metric": False}, make_space()).fit(history).fitted.model,
                      RegMixModel)
    bare = History(DOMAINS, history.X, history.y, history.fidelity, history.run_ids, history.pool_keys)
    assert isinstance(make_backend("regmix", FAST, make_space()).fit(bare).fitted.model, RegMixModel)


@pytest.mark.parametrize("budget", [3, 4, 5])
def test_climb_with_a_budget_too_small_for_a_predictor_keeps_proposing_from_its_prior(budget):
    """A round that starts before 3 runs exist has nothing to fit: it draws from the prior."""
    space = make_space()
    space.budget_runs = budget
    backend = make_backend("climb", {"n_candidates": 200}, space)
    for done in range(budget):
        proposals = backend.fit(make_history(done)).propose(1, np.random.default_rng(done))
        assert len(proposals) == 1 and sum(proposals[0].mixture.weights) == pytest.approx(1.0)


def test_climb_runs_the_baselines_first_and_a_budget_below_its_phases_runs_the_first_ones():
    from search.backends.climb import phase_sizes

    space = make_space()
    space.baselines = {"uniform": np.full(4, 0.25), "previous": np.array([0.7, 0.1, 0.1, 0.1])}
    first = make_backend("climb", {"n_candidates": 200}, space).fit(make_history(0)).propose(
        3, np.random.default_rng(0))
    assert [p.mixture.weights for p in first[:2]] == [pytest.approx((0.25,) * 4), pytest.approx((0.7, 0.1, 0.1, 0.1))]
    assert phase_sizes(2, [4, 2, 1]) == [1, 1] and phase_sizes(1, [4, 2, 1]) == [1]
