"""RegMix regression quality on RegMix's published tables: fit on the 512 1M-parameter
training runs (target: Pile-CC validation loss), rank the 256 test mixtures at 1M and at
60M. RegMix reports LightGBM Spearman 98.45 (1M) and 98.64 (60M); linear 90.08 / 89.26.
`_law`: the log-linear mixing law (search.law) with its default fit, one law on the target.
`spearman_60m_from_1m_<model>`: the same 60M figures under the cross-scale protocol's names
(benchmarks/regression_protocol.py). `avg_60m_from_1m_*`: mixer's default target, the mean
of the 13 domain losses, ranked at 60M by the default regmix (one model per loss, combined)
and by one model of the mean. `spearman_60m_law_from_1m`: Data Mixing Laws' nested pipeline
(search.scaling, then the law) from the 1M runs. They are one fidelity (one model size, one
budget, no curves), so there is no ladder to extrapolate and the key is the plain law's;
benchmarks/nested_law.py measures the scaling step on ladders of real proxy runs.

    python benchmarks/regression.py [--json out.json] [--quick]

The full run takes under a minute on 2 cores (no seeds to cut), so `--quick` runs it as is.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import parser, report  # noqa: E402
from search.backends.regmix import RegMixConfig, RegMixModel, fit_checked  # noqa: E402
from search.law import LawFitConfig, fit_laws  # noqa: E402

REGMIX = Path(__file__).resolve().parents[2] / "shared" / "peers" / "regmix"
TARGET = "metric/the_pile_pile_cc_val_loss"


def load(split: str, size: str) -> tuple[np.ndarray, np.ndarray]:
    mix = pd.read_csv(REGMIX / f"{split}_mixture_{size}.csv")
    loss = pd.read_csv(REGMIX / f"{split}_pile_loss_{size}.csv")
    joined = mix.merge(loss, on="index")
    X = joined[[c for c in mix.columns if c.startswith("train_")]].to_numpy(dtype=np.float64)
    return X / X.sum(axis=1, keepdims=True), joined[TARGET].to_numpy()


def scores(predict, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    pred = predict(X)
    return 100 * spearmanr(pred, y)[0], 100 * pearsonr(pred, y)[0]


def avg_target(cfg: RegMixConfig, per_metric: bool) -> float:
    """60M Spearman of regmix fitted on the 1M training runs for the `avg` target (the mean
    of the 13 domain losses): one model per loss combined, or one model of the mean."""
    from benchmarks.regression_protocol import load_all
    from search.history import MetricValues

    X, train = load_all("train", "1m")
    X60, test = load_all("test", "60m")
    values = train.to_numpy()
    metrics = MetricValues(values, list(train.columns), np.full(values.shape[1], 1 / values.shape[1]), False)
    model = fit_checked(cfg, X, values.mean(axis=1), metrics if per_metric else None).model
    return 100 * spearmanr(model.predict(X60)[0], test.to_numpy().mean(axis=1))[0]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--quick", action="store_true", help="the full run (under a minute): same keys")
    args = p.parse_args()
    if not REGMIX.is_dir():
        sys.exit(f"RegMix tables not found at {REGMIX}")
    X, y = load("train", "1m")
    X1, y1 = load("test", "1m")
    X60, y60 = load("test", "60m")
    figures = {}
    for label, cfg in [("", RegMixConfig()), ("_single_lgbm", RegMixConfig(regressor="lightgbm", n_models=1)),
                       ("_linear", RegMixConfig(regressor="linear")), ("_ridge", RegMixConfig(regressor="ridge")),
                       ("_regmix_paper", RegMixConfig(preset="regmix-paper"))]:
        start = time.perf_counter()
        model: RegMixModel = fit_checked(cfg, X, y).model
        fit_s = time.perf_counter() - start
        predict = lambda Z, model=model: model.predict(Z)[0]  # noqa: E731
        figures[f"spearman_1m{label}"], figures[f"pearson_1m{label}"] = scores(predict, X1, y1)
        figures[f"spearman_60m{label}"], figures[f"pearson_60m{label}"] = scores(predict, X60, y60)
        figures[f"spearman_60m_from_1m{label or '_default'}"] = figures[f"spearman_60m{label}"]
        figures[f"fit_s{label}"] = fit_s
    start = time.perf_counter()
    law = fit_laws(X, y[:, None], cfg=LawFitConfig())
    figures["fit_s_law"] = time.perf_counter() - start
    predict = lambda Z: law.predict(Z)[0, 0]  # noqa: E731
    figures["spearman_1m_law"], figures["pearson_1m_law"] = scores(predict, X1, y1)
    figures["spearman_60m_law"], figures["pearson_60m_law"] = scores(predict, X60, y60)
    figures["spearman_60m_from_1m_law"] = figures["spearman_60m_law"]
    figures["spearman_60m_law_from_1m"] = figures["spearman_60m_law"]   # the nested law: see the docstring
    figures["avg_60m_from_1m_default"] = avg_target(RegMixConfig(), per_metric=True)
    figures["avg_60m_from_1m_one_model"] = avg_target(RegMixConfig(), per_metric=False)
    report("RegMix regression on RegMix's tables", figures,
           {"spearman_1m": "> 98.45", "spearman_60m": "> 98.64", "spearman_1m_linear": "RegMix: 90.08",
            "spearman_60m_linear": "RegMix: 89.26", "spearman_1m_law": "between linear and LightGBM, or above",
            "avg_60m_from_1m_default": "> avg_60m_from_1m_one_model"},
           args.json)


if __name__ == "__main__":
    main()
