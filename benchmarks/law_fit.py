"""How the mixing law's fit defaults were chosen: cross-validation on RegMix's 512 1M
training runs only (the test tables are never touched here; benchmarks/regression.py
reports them afterwards). Two regimes: all 512 runs (5-fold), and a user's small search
(`--small` runs drawn from the 512, 5-fold, averaged over `--subsets` draws). Grid over
`starts`, `l2` and `huber_delta`; the default is the best mean out-of-fold Spearman over
the two regimes.

    python benchmarks/law_fit.py [--json out.json] [--small 24] [--subsets 10]
    python benchmarks/law_fit.py --forms [--json out.json]   # the explicit and implicit forms, side by side
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


def forms(n_runs: list[int], draws: int) -> dict[str, float]:
    """Data Mixing Laws' two forms for `avg` over the 13 losses, side by side: the explicit
    (a law per loss, combined) and the implicit (one law on the average), fitted on n of the
    1M training runs; out-of-fold Spearman there and Spearman on the 60M test runs, and how
    often `mixing_law`'s out-of-fold choice took the explicit form."""
    from benchmarks.regression_protocol import load_all
    from search.backends.mixing_law import MixingLawConfig, fit, fit_form, law_forms
    from search.history import History

    X, train = load_all("train", "1m")
    X60, test = load_all("test", "60m")
    Y, truth = train.to_numpy(), test.to_numpy().mean(axis=1)
    cfg, out = MixingLawConfig(bootstrap=4), {}
    for n in n_runs:
        scores: dict[str, list[float]] = {}
        for draw in range(draws if n < len(Y) else 1):
            i = np.random.default_rng(draw).choice(len(Y), n, replace=False)
            history = History(list(train.columns), X[i], Y[i].mean(axis=1), metrics=list(train.columns),
                              values=Y[i], terms=np.full(Y.shape[1], 1 / Y.shape[1]))
            for form in law_forms(history):
                fitted = fit_form(cfg, history, form)
                name = "implicit" if form.metrics == ["target"] else "explicit"
                scores.setdefault(f"cv_{name}", []).append(100 * fitted.quality.cv_spearman)
                scores.setdefault(f"60m_{name}", []).append(100 * spearmanr(fitted.predict(X60)[0], truth)[0])
            scores.setdefault("chose_explicit", []).append(float(fit(cfg, history).metrics != ["target"]))
        out |= {f"law_forms_avg_{key}_n{n}": float(np.mean(v)) for key, v in scores.items()}
        print(f"{n} runs: " + ", ".join(f"{k} {np.mean(v):.2f}" for k, v in scores.items()), flush=True)
    return out


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--small", type=int, default=24)
    p.add_argument("--subsets", type=int, default=10)
    p.add_argument("--forms", action="store_true", help="only the two forms side by side (`law_forms_*` keys)")
    p.add_argument("--quick", action="store_true", help="--forms at 24 and 512 runs, 2 draws")
    args = p.parse_args()
    if args.forms or args.quick:
        sizes, draws = ([24, 512], 2) if args.quick else ([24, 64, 512], 5)
        report("Data Mixing Laws' two forms for avg over RegMix's 13 losses (fit on 1M, rank 60M)",
               forms(sizes, draws), {}, args.json)
        return
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
