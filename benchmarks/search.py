"""Search efficiency on RegMix's published runs, in pool mode (the table evaluator's
setting): each backend may pick any of the 512 1M-parameter training runs, each at most
once, and sees the Pile-CC loss of what it picked. Reported over 20 seeds: the median
number of runs until the best run found is in the pool's top 1% (5 of 512), and the median
regret (best found minus pool best) after 16, 32 and 64 runs.

The loop is the driver's (propose a batch of `--batch`, look the results up, append to
the history), run in memory instead of through DuckDB so 20 seeds take minutes.

    python benchmarks/search.py [--json out.json] [--seeds 20] [--batch 4]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import parser, report  # noqa: E402
from benchmarks.regression import load  # noqa: E402
from search.backends import make_backend  # noqa: E402
from search.history import History  # noqa: E402
from search.space import Pool, SearchSpace  # noqa: E402

DOMAINS = [f"d{i}" for i in range(17)]


def pool_search(backend_name: str, X: np.ndarray, y: np.ndarray, seed: int, batch: int, max_runs: int,
                stop_below: float) -> list[float]:
    """Targets of the runs in the order the backend chose them (stops once one is below
    `stop_below`, or after max_runs)."""
    keys = [str(i) for i in range(len(y))]
    space = SearchSpace(domains=DOMAINS, prior=X.mean(axis=0), pool=Pool(keys, X, ["1m"] * len(y)),
                        fidelities=["1m"], target_fidelity="1m")
    backend = make_backend(backend_name, {"seed": seed} if backend_name != "random" else {}, space)
    history = History.empty(DOMAINS)
    chosen: list[float] = []
    while len(chosen) < max_runs and (not chosen or min(chosen) > stop_below):
        rng = np.random.default_rng([seed, len(chosen)])
        for p in backend.propose(history, batch, rng):
            i = int(p.pool_key)
            chosen.append(float(y[i]))
            history = History(DOMAINS, np.vstack([history.X, X[i]]), np.append(history.y, y[i]),
                              history.fidelity + ["1m"], history.run_ids + [p.pool_key],
                              history.pool_keys + [p.pool_key])
    return chosen


def runs_to_threshold(values: list[float], threshold: float) -> int:
    for i, v in enumerate(values, start=1):
        if v <= threshold:
            return i
    return len(values) + 1


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--batch", type=int, default=4)
    args = p.parse_args()
    X, y = load("train", "1m")
    threshold = np.sort(y)[max(1, len(y) // 100) - 1]  # the 5th best of 512
    figures = {}
    for name in ("random", "regmix"):
        start = time.perf_counter()
        counts, regrets = [], {16: [], 32: [], 64: []}
        for seed in range(args.seeds):
            values = pool_search(name, X, y, seed, args.batch, len(y), threshold)
            counts.append(runs_to_threshold(values, threshold))
            full = values + [min(values)] * 64
            for k in regrets:
                regrets[k].append(min(full[:k]) - y.min())
        figures[f"runs_to_top1pct_{name}"] = float(np.median(counts))
        for k, r in regrets.items():
            figures[f"regret_at_{k}_{name}"] = float(np.median(r))
        figures[f"seconds_{name}"] = time.perf_counter() - start
    figures["regmix_vs_random_runs"] = figures["runs_to_top1pct_regmix"] / figures["runs_to_top1pct_random"]
    report(f"Pool search on RegMix's 512 1M runs ({args.seeds} seeds, batch {args.batch})", figures,
           {"regmix_vs_random_runs": "<= 0.25"}, args.json)


if __name__ == "__main__":
    main()
