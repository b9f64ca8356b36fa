"""Search efficiency on RegMix's published runs, in pool mode (the table evaluator's
setting): a backend may pick any entry of a pool, each at most once, and sees the Pile-CC
loss of what it picked. The loop is the driver's (propose a batch of `--batch`, look the
results up, append to the history), run in memory instead of through DuckDB so that 20
seeds per backend finish in minutes. Medians over `--seeds` seeds.

Single fidelity: the 512 1M-parameter training runs. `runs_to_top1pct_<backend>` (random, regmix, bayesopt, mixing_law, climb): runs
until the best run found is in the pool's top 1% (5 of 512); `regret_at_<k>_<backend>`: best
found minus pool best after k runs.

Multi-fidelity: the 256 test mixtures that have both 1M and 60M results (512 entries). A 60M
run costs 10, a 1M run 1 (their FLOPs per token differ by about 7x). After each batch the
search's choice is its recommendation (random search: its best 60M run; bayesopt: the pool
mixture with the best posterior mean at 60M), judged by that mixture's 60M loss.
`cost_to_top3_60m_<method>`: cost spent until the choice is among the pool's 3 best at
60M, for random search at 60M, single-fidelity BO at 60M only, and multi-fidelity BO.

`propose_s_at_100_obs`: seconds for one bayesopt proposal with 100 observations (80 at
1M, 20 at 60M of mixtures also run at 1M, as the fidelity gate's shadows have it) outside pool mode, over 17 domains at two fidelities, in a running search
(the backend proposed at 96 observations before, so its GP starts from those
hyperparameters); `_cold` for a backend's first proposal; `_batch4` per proposal of a
batch of 4; `_single` with one fidelity (100 runs at 60M). `propose_s_at_500_obs`: the same
with 500 observations (300 of RegMix's 1M training runs, 100 test mixtures at both 1M
and 60M). BoTorch is imported before the clock starts, as in a running driver.

    python benchmarks/search.py [--json out.json] [--seeds 20] [--batch 4] [--quick]

`--quick`: 2 seeds (same keys; medians of two).
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
from search.fidelity import Fidelities, table_fidelities  # noqa: E402
from search.history import History  # noqa: E402
from search.space import Pool, SearchSpace  # noqa: E402

DOMAINS = [f"d{i}" for i in range(17)]
COSTS = {"1m": 1.0, "60m": 10.0}


def _options(backend: str, seed: int) -> dict:
    return {} if backend == "random" else {"seed": seed}


def pool_search(backend_name: str, X: np.ndarray, y: np.ndarray, seed: int, batch: int, max_runs: int,
                stop_below: float) -> list[float]:
    """Targets of the runs in the order the backend chose them (stops once one is below
    `stop_below`, or after max_runs)."""
    keys = [str(i) for i in range(len(y))]
    space = SearchSpace(domains=DOMAINS, prior=X.mean(axis=0), pool=Pool(keys, X, ["1m"] * len(y)),
                        fidelity=Fidelities.single("1m"))
    backend = make_backend(backend_name, _options(backend_name, seed), space)
    history = History.empty(DOMAINS)
    chosen: list[float] = []
    while len(chosen) < max_runs and (not chosen or min(chosen) > stop_below):
        rng = np.random.default_rng([seed, len(chosen)])
        for p in backend.propose(history, batch, rng):
            i = int(p.pool_key)
            chosen.append(float(y[i]))
            history = history.append(X[i], y[i], "1m", p.pool_key, p.pool_key)
    return chosen


def runs_to_threshold(values: list[float], threshold: float) -> int:
    for i, v in enumerate(values, start=1):
        if v <= threshold:
            return i
    return len(values) + 1


def single_fidelity(args, figures: dict) -> None:
    X, y = load("train", "1m")
    threshold = np.sort(y)[max(1, len(y) // 100) - 1]  # the 5th best of 512
    for name in args.backends.split(","):
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
    for name in args.backends.split(","):
        if name != "random" and "runs_to_top1pct_random" in figures:
            figures[f"{name}_vs_random_runs"] = figures[f"runs_to_top1pct_{name}"] / figures["runs_to_top1pct_random"]


def multi_fidelity_pool(method: str) -> tuple[SearchSpace, str, np.ndarray, np.ndarray]:
    """The space of a method, its backend, and the pool's targets [P] and 60M indices [P]."""
    X1, y1 = load("test", "1m")
    X60, y60 = load("test", "60m")
    n = len(y60)
    if method == "bo_multi":
        pool = Pool([f"1m/{i}" for i in range(n)] + [f"60m/{i}" for i in range(n)], np.vstack([X1, X60]),
                    ["1m"] * n + ["60m"] * n)
        fidelity = table_fidelities(["1m", "60m"], "60m", COSTS)
        values, mixture = np.concatenate([y1, y60]), np.concatenate([np.arange(n), np.arange(n)])
    else:
        pool = Pool([f"60m/{i}" for i in range(n)], X60, ["60m"] * n)
        fidelity = table_fidelities(["60m"], "60m", {"60m": COSTS["60m"]})
        values, mixture = y60, np.arange(n)
    space = SearchSpace(domains=DOMAINS, prior=X60.mean(axis=0), pool=pool, fidelity=fidelity)
    return space, "random" if method == "random" else "bayesopt", values, mixture


def cost_to_top3(method: str, seed: int, batch: int) -> float:
    space, backend_name, values, mixture = multi_fidelity_pool(method)
    X60, y60 = load("test", "60m")
    top3 = set(np.argsort(y60)[:3].tolist())
    backend = make_backend(backend_name, _options(backend_name, seed), space)
    history = History.empty(DOMAINS)
    cost = 0.0
    while True:
        proposals = backend.propose(history, batch, np.random.default_rng([seed, len(history)]))
        if not proposals:
            return cost  # pool exhausted (never happens before the top 3 are run)
        for p in proposals:
            i = space.pool.keys.index(p.pool_key)
            history = history.append(space.pool.X[i], values[i], p.fidelity, p.pool_key, p.pool_key)
            cost += COSTS[p.fidelity]
        if "60m" not in history.fidelity and method != "bo_multi":
            continue
        if len(history) < 2 or np.ptp(history.y) == 0:
            continue
        choice = backend.recommend(history).mixture.vector(DOMAINS)
        if int(np.argmin(np.abs(X60 - choice).sum(axis=1))) in top3:
            return cost


def multi_fidelity(args, figures: dict) -> None:
    for method in ("random", "bo_single", "bo_multi"):
        start = time.perf_counter()
        costs = [cost_to_top3(method, seed, args.batch) for seed in range(args.seeds)]
        figures[f"cost_to_top3_60m_{method}"] = float(np.median(costs))
        figures[f"seconds_mf_{method}"] = time.perf_counter() - start
    figures["bo_multi_vs_random_cost"] = figures["cost_to_top3_60m_bo_multi"] / figures["cost_to_top3_60m_random"]
    figures["bo_multi_vs_bo_single_cost"] = (figures["cost_to_top3_60m_bo_multi"]
                                             / figures["cost_to_top3_60m_bo_single"])


def history(rows: list[tuple[np.ndarray, float, str]]) -> History:
    seen = History.empty(DOMAINS)
    for k, (x, y, fidelity) in enumerate(rows):
        seen = seen.append(x, y, fidelity, f"r{k}")
    return seen


def proposal_time(figures: dict) -> None:
    X1, y1 = load("test", "1m")
    X60, y60 = load("test", "60m")
    Xt, yt = load("train", "1m")
    order = np.random.default_rng(0).permutation(len(y1))
    # the 20 60M runs are shadowed at 1M (as the fidelity gate has them), so the proposal is the GP's
    multi = ([(X1[i], y1[i], "1m") for i in order[:80]]
             + [(X60[i], y60[i], "60m") for i in order[60:80]])
    single = [(X60[i], y60[i], "60m") for i in order[:100]]
    large = [(Xt[i], yt[i], "1m") for i in range(300)] + [(X1[i], y1[i], "1m") for i in order[:100]] + single
    cases = (("_at_100_obs", ["1m", "60m"], multi), ("_at_100_obs_single", ["60m"], single),
             ("_at_500_obs", ["1m", "60m"], large))
    import botorch.acquisition.max_value_entropy_search  # noqa: F401  (imported, as in a running driver)

    for suffix, labels, rows in cases:
        space = SearchSpace(domains=DOMAINS, prior=X60.mean(axis=0),
                            fidelity=table_fidelities(labels, "60m", {k: COSTS[k] for k in labels}))
        for n, key in ((1, ""), (4, "_batch4")):
            backend = make_backend("bayesopt", {}, space)
            start = time.perf_counter()
            backend.propose(history(rows[:-4]), n, np.random.default_rng(1))
            if key == "":
                figures[f"propose_s{suffix}_cold"] = time.perf_counter() - start
            start = time.perf_counter()
            proposals = backend.propose(history(rows), n, np.random.default_rng(0))
            figures[f"propose_s{suffix.replace('_obs', '_obs' + key)}"] = (time.perf_counter() - start) / len(proposals)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--only", choices=["single", "multi", "time"], help="run one part")
    p.add_argument("--backends", default="random,regmix,bayesopt,mixing_law,climb", help="single-fidelity backends")
    p.add_argument("--quick", action="store_true", help="2 seeds (same keys)")
    args = p.parse_args()
    if args.quick:
        args.seeds = 2
    figures: dict = {}
    if args.only in (None, "time"):
        proposal_time(figures)
    if args.only in (None, "single"):
        single_fidelity(args, figures)
    if args.only in (None, "multi"):
        multi_fidelity(args, figures)
    report(f"Pool search on RegMix's runs ({args.seeds} seeds, batch {args.batch})", figures,
           {"regmix_vs_random_runs": "<= 0.25", "bo_multi_vs_random_cost": "<= 0.2",
            "bo_multi_vs_bo_single_cost": "<= 0.5", "propose_s_at_100_obs": "< 2"}, args.json)


if __name__ == "__main__":
    main()
