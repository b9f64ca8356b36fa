"""How regmix's regression defaults are chosen, on RegMix's tables, and what was tried.

A user fits on cheap proxies to rank mixtures for a far larger model, so the protocol that
chooses the defaults scores that: `--protocol scale` (the default) fits each candidate on
the 512 1M-parameter training runs and ranks the 256 test mixtures by their 60M-parameter
losses (the larger scale these tables hold), for every one of the 13 domain losses as the
target (a default serves every target, not Pile-CC's alone), and for `avg` (their mean,
mixer's default target). The score is the mean Spearman over the 13 domain targets; its
standard error is a paired bootstrap over the test mixtures. `--protocol cv` is the
in-scale protocol that chose the earlier defaults: 5-fold cross-validation on the 512
training runs (Pile-CC's loss). Both are computed and shown side by side; only the
protocol named chooses.

The choice: the shipped default stays while it is within one standard error of the best
score (the bootstrap's, or the folds'): a default changes only for a setting better beyond
the noise of the check. Otherwise, among shippable settings (a `RegMixConfig`) within one
standard error of the best, the cheapest (trees grown per fit, then leaves): Breiman's
one-SE rule.

What is tried beside the LightGBM grid (leaves, trees x learning rate, row and column
subsampling, leaf size): RegMix's notebook setting, Huber and log- and rank-transformed
targets, monotone constraints (each domain's sign from a ridge fit), the mixing law, the
law with trees on its residuals (stacking), ridge and linear regressions; for `avg`, one
model of the mean against one model per domain loss averaged. A 1,000x larger model's
runs (RegMix's 1B table) are deliberately not here: they are the held-out check.

Also: the `auto` rule (ridge below 2 x domains runs, else the lower out-of-fold error of
ridge and LightGBM) on n-run subsets of the training runs, against each regressor alone,
at 60M (`spearman_60m_from_1m_<regressor>_n<n>`).

Keys: `scale_<label>` (mean 60M Spearman over the domain targets), `cv_<label>`,
`spearman_60m_from_1m_<label>` (Pile-CC), `avg_60m_from_1m_<label>`, for every candidate;
`chosen`, `chosen_scale`, `chosen_cv`, `one_se`, `tied` (shippable settings within it), `best`.

    python benchmarks/regression_protocol.py [--protocol scale|cv] [--quick] [--json out.json]
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr
from sklearn.model_selection import KFold

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import parser, report  # noqa: E402
from benchmarks.regression import REGMIX, TARGET  # noqa: E402
from search.backends.regmix import RegMixConfig, RegMixModel, Regressor, fit_checked  # noqa: E402
from search.law import LawFitConfig, fit_laws  # noqa: E402

Predictor = Callable[[np.ndarray], np.ndarray]

GRID = {
    "num_leaves": [3, 7, 15, 31],
    "trees": [(200, 0.05), (500, 0.05), (1000, 0.01), (2000, 0.01)],   # (n_estimators, learning_rate)
    "subsample": [0.8, 1.0],                  # 1.0: one model (its copies would be identical)
    "min_child_samples": [5, 20],
}
QUICK_GRID = {"num_leaves": [7, 31], "trees": [(200, 0.05), (1000, 0.01)], "subsample": [0.8, 1.0],
              "min_child_samples": [5, 20]}
SUBSET_SIZES = (16, 34, 64, 128, 256)     # 34: 2 x 17 domains, where `auto` starts to consider LightGBM


@dataclass(frozen=True)
class Candidate:
    label: str
    fit: Callable[[np.ndarray, np.ndarray], Predictor]
    cost: tuple[int, int]              # trees grown per fit, leaves: the one-SE rule takes the cheapest
    config: RegMixConfig | None = None  # what regmix would ship; None: tried, not a regmix setting


def regmix(cfg: RegMixConfig,
           regressor: Regressor = Regressor.lightgbm) -> Callable[[np.ndarray, np.ndarray], Predictor]:
    def fit(X: np.ndarray, y: np.ndarray) -> Predictor:
        model = RegMixModel(cfg, regressor).fit(X, y)
        return lambda Z: model.predict(Z)[0]
    return fit


def lightgbm(transform: str = "none", **params) -> Callable[[np.ndarray, np.ndarray], Predictor]:
    """Five LightGBM models at the shipped tree settings with another objective or target
    transform ("log", "rank"), or monotone in each domain by the sign of a ridge fit."""
    import lightgbm as lgb
    from sklearn.linear_model import Ridge

    def fit(X: np.ndarray, y: np.ndarray) -> Predictor:
        target = {"none": y, "log": np.log(y), "rank": rankdata(y) / len(y)}[transform]
        extra = dict(params)
        if extra.pop("monotone", False):
            extra["monotone_constraints"] = [int(s) for s in np.sign(Ridge(alpha=1e-3).fit(X, y).coef_)]
        models = [lgb.LGBMRegressor(n_estimators=200, learning_rate=0.05, num_leaves=7, min_child_samples=5,
                                    subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=seed,
                                    verbosity=-1, n_jobs=1, **extra).fit(X, target) for seed in range(5)]
        return lambda Z: np.mean([m.predict(Z) for m in models], axis=0)
    return fit


def law(X: np.ndarray, y: np.ndarray) -> Predictor:
    fitted = fit_laws(X, y[:, None], cfg=LawFitConfig())
    return lambda Z: fitted.predict(Z)[0, 0]


def law_then_trees(X: np.ndarray, y: np.ndarray) -> Predictor:
    """Stacking: the mixing law, and LightGBM (the shipped setting) on its residuals."""
    first = law(X, y)
    trees = regmix(RegMixConfig(regressor="lightgbm"))(X, y - first(X))
    return lambda Z: first(Z) + trees(Z)


def candidates(quick: bool) -> list[Candidate]:
    out = []
    for leaves, (trees, lr), subsample, min_child in itertools.product(*(QUICK_GRID if quick else GRID).values()):
        n_models = 5 if subsample < 1 else 1
        cfg = RegMixConfig(regressor="lightgbm", num_leaves=leaves, n_estimators=trees, learning_rate=lr,
                           subsample=subsample, min_child_samples=min_child, n_models=n_models)
        out.append(Candidate(f"lgbm_l{leaves}_t{trees}_lr{lr}_s{subsample}_c{min_child}", regmix(cfg),
                             (trees * n_models, leaves), cfg))
    paper = RegMixConfig(preset="regmix-paper")
    out += [Candidate("regmix_paper", regmix(paper), (1000, 31), paper),
            Candidate("huber", lightgbm(objective="huber", alpha=0.05), (1000, 7)),
            Candidate("log_target", lightgbm("log"), (1000, 7)),
            Candidate("rank_target", lightgbm("rank"), (1000, 7)),
            Candidate("monotone", lightgbm(monotone=True), (1000, 7)),
            Candidate("law", law, (0, 0)),
            Candidate("law_then_trees", law_then_trees, (1000, 7)),
            Candidate("ridge", regmix(RegMixConfig(), Regressor.ridge), (0, 0)),
            Candidate("linear", regmix(RegMixConfig(), Regressor.linear), (0, 0))]
    return out


def load_all(split: str, size: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Mixtures [n, 17] (rows normalised) and the 13 domain losses, joined on `index`."""
    mix = pd.read_csv(REGMIX / f"{split}_mixture_{size}.csv")
    loss = pd.read_csv(REGMIX / f"{split}_pile_loss_{size}.csv")
    joined = mix.merge(loss, on="index")
    X = joined[[c for c in mix.columns if c.startswith("train_")]].to_numpy(dtype=np.float64)
    return X / X.sum(axis=1, keepdims=True), joined[[c for c in loss.columns if c.startswith("metric/")]]


def spearman_rows(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Spearman of each row pair: pred, truth [..., n] -> [...]."""
    a, b = rankdata(pred, axis=-1), rankdata(truth, axis=-1)
    a, b = a - a.mean(-1, keepdims=True), b - b.mean(-1, keepdims=True)
    return (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))


def bootstrap_scores(P: np.ndarray, Y: np.ndarray, draws: int = 200) -> np.ndarray:
    """Mean Spearman over targets per candidate for paired resamples of the test mixtures:
    P [C, T, n] predictions, Y [T, n] truth -> [draws, C]."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(draws):
        i = rng.integers(0, Y.shape[1], Y.shape[1])
        out.append(100 * spearman_rows(P[:, :, i], Y[None, :, i]).mean(axis=1))
    return np.array(out)


def cv_score(candidate: Candidate, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """In-scale: mean out-of-fold Spearman over 5 folds of the training runs, and its
    standard error over the folds."""
    scores = []
    for train, test in KFold(5, shuffle=True, random_state=0).split(X):
        scores.append(100 * spearmanr(candidate.fit(X[train], y[train])(X[test]), y[test])[0])
    return float(np.mean(scores)), float(np.std(scores, ddof=1) / np.sqrt(len(scores)))


def one_se(protocol: str, labels: list[str], best: str, boot: np.ndarray, cv_se: dict[str, float]) -> float:
    """The best score's standard error: over bootstrap resamples of the test mixtures
    (scale), or over the folds (cv)."""
    return float(np.std(boot[:, labels.index(best)])) if protocol == "scale" else cv_se[best]


def auto_curve(X: np.ndarray, y: np.ndarray, X60: np.ndarray, y60: np.ndarray, cfg: RegMixConfig,
               draws: int) -> dict[str, float]:
    """60M Spearman of regmix fitted on n-run subsets: ridge, LightGBM and `auto`'s choice."""
    figures = {}
    for n in SUBSET_SIZES:
        scores: dict[str, list[float]] = {"ridge": [], "lightgbm": [], "auto": []}
        for draw in range(draws):
            i = np.random.default_rng(draw).choice(len(y), n, replace=False)
            for name, regressor in (("ridge", Regressor.ridge), ("lightgbm", Regressor.lightgbm),
                                    ("auto", Regressor.auto)):
                model = fit_checked(replace(cfg, regressor=regressor), X[i], y[i]).model
                scores[name].append(100 * spearmanr(model.predict(X60)[0], y60)[0])
        figures |= {f"spearman_60m_from_1m_{name}_n{n}": float(np.mean(v)) for name, v in scores.items()}
        print(f"n={n}: " + ", ".join(f"{k} {np.mean(v):.2f}" for k, v in scores.items()), flush=True)
    return figures


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--protocol", choices=["scale", "cv"], default="scale")
    p.add_argument("--quick", action="store_true", help="a 16-point grid, 2 subset draws (same keys)")
    args = p.parse_args()
    if not REGMIX.is_dir():
        sys.exit(f"RegMix tables not found at {REGMIX}")
    X, train = load_all("train", "1m")
    X60, test60 = load_all("test", "60m")
    targets = list(train.columns)
    Y, Y60 = train.to_numpy(), test60.to_numpy().T                          # [512, T], [T, 256]
    start = time.perf_counter()
    cands = candidates(args.quick)
    P = np.zeros((len(cands), len(targets), len(Y60[0])))
    avg_direct, avg_combined, cv, cv_se = {}, {}, {}, {}
    for c, cand in enumerate(cands):
        for t in range(len(targets)):
            P[c, t] = cand.fit(X, Y[:, t])(X60)
        avg_direct[cand.label] = 100 * spearmanr(cand.fit(X, Y.mean(axis=1))(X60), Y60.mean(axis=0))[0]
        avg_combined[cand.label] = 100 * spearmanr(P[c].mean(axis=0), Y60.mean(axis=0))[0]
        cv[cand.label], cv_se[cand.label] = cv_score(cand, X, Y[:, targets.index(TARGET)])
        print(f"{cand.label:34s} scale {100 * spearman_rows(P[c], Y60).mean():.2f}  cv {cv[cand.label]:.2f}",
              flush=True)
    labels = [cand.label for cand in cands]
    scale = {label: float(100 * spearman_rows(P[c], Y60).mean()) for c, label in enumerate(labels)}
    score = scale if args.protocol == "scale" else cv
    best = max(score, key=score.get)
    se = one_se(args.protocol, labels, best, bootstrap_scores(P, Y60), cv_se)
    tied = [c for c in cands if c.config is not None and score[c.label] >= score[best] - se]
    shipped = [c for c in tied if c.config == RegMixConfig(regressor="lightgbm")]
    chosen = shipped[0] if shipped else min(tied, key=lambda c: c.cost)
    figures: dict = {"protocol": args.protocol, "best": best, "chosen": chosen.label,
                     "chosen_scale": scale[chosen.label], "chosen_cv": cv[chosen.label], "one_se": se,
                     "tied": len(tied), "candidates": len(cands), "seconds": time.perf_counter() - start}
    pile_cc = targets.index(TARGET)
    for c, label in enumerate(labels):
        figures |= {f"scale_{label}": scale[label], f"cv_{label}": cv[label],
                    f"spearman_60m_from_1m_{label}": float(100 * spearman_rows(P[c, pile_cc], Y60[pile_cc])),
                    f"avg_60m_from_1m_{label}": float(avg_direct[label]),
                    f"avg_60m_from_1m_per_domain_{label}": float(avg_combined[label])}
    figures |= auto_curve(X, Y[:, pile_cc], X60, Y60[pile_cc], chosen.config, 2 if args.quick else 5)
    report(f"regmix defaults by the {args.protocol} protocol on RegMix's tables (fit on 1M, rank 60M)", figures,
           {"chosen": "the shipped default (RegMixConfig())"}, args.json)


if __name__ == "__main__":
    main()
