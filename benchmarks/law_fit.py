"""How the mixing law's fit defaults were chosen: cross-validation on RegMix's 512 1M
training runs only (the test tables are never touched here; benchmarks/regression.py
reports them afterwards). Two regimes: all 512 runs (5-fold), and a user's small search
(`--small` runs drawn from the 512, 5-fold, averaged over `--subsets` draws). Grid over
`starts`, `l2` and `huber_delta`; the default is the best mean out-of-fold Spearman over
the two regimes.

    python benchmarks/law_fit.py [--json out.json] [--small 24] [--subsets 10]
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import parser, report  # noqa: E402
from benchmarks.regression import load  # noqa: E402
from search.law import LawFitConfig, fit_laws, fold_weights  # noqa: E402

STARTS, L2, DELTA = (1, 4, 16), (0.0, 1e-6, 1e-5, 1e-4), (0.02, 0.1, 0.5, 2.0)


def cv_spearman(X: np.ndarray, y: np.ndarray, cfg: LawFitConfig, seed: int = 0) -> float:
    """Out-of-fold Spearman of one law on the target, 5 folds fitted in one batch."""
    weights, fold = fold_weights(len(y), 5, seed)
    predictions = fit_laws(X, y[:, None], weights, cfg).predict(X)[:, 0]     # [5, n]
    return float(spearmanr(predictions[fold, np.arange(len(y))], y)[0])


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--small", type=int, default=24)
    p.add_argument("--subsets", type=int, default=10)
    args = p.parse_args()
    X, y = load("train", "1m")
    subsets = [np.random.default_rng(s).choice(len(y), args.small, replace=False) for s in range(args.subsets)]
    rows = []
    start = time.perf_counter()
    for starts, l2, delta in itertools.product(STARTS, L2, DELTA):
        cfg = LawFitConfig(huber_delta=delta, starts=starts, l2=l2)
        full = cv_spearman(X, y, cfg)
        small = float(np.mean([cv_spearman(X[i], y[i], cfg, seed) for seed, i in enumerate(subsets)]))
        rows.append((starts, l2, delta, full, small))
        print(f"starts={starts:3d} l2={l2:g} delta={delta:g}: cv spearman 512 runs {100 * full:.2f}, "
              f"{args.small} runs {100 * small:.2f}", flush=True)
    best = max(rows, key=lambda r: r[3] + r[4])
    default = next(r for r in rows if r[:3] == (LawFitConfig.starts, LawFitConfig.l2, LawFitConfig.huber_delta))
    figures = {"chosen_starts": best[0], "chosen_l2": best[1], "chosen_huber_delta": best[2],
               "cv_spearman_512_chosen": 100 * best[3], f"cv_spearman_{args.small}_chosen": 100 * best[4],
               "cv_spearman_512_default": 100 * default[3], f"cv_spearman_{args.small}_default": 100 * default[4],
               "grid_seconds": time.perf_counter() - start}
    report("Mixing-law fit defaults by CV on RegMix's 512 training runs", figures,
           {"cv_spearman_512_default": "= chosen (the shipped default)"}, args.json)


if __name__ == "__main__":
    main()
