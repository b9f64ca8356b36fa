"""The mixing law's exact optimum against brute force: on a synthetic law with known
parameters (one law per domain, target = their mean) and repetition caps, cvxpy's optimum
(search.law_optimum) against the best of `--samples` Dirichlet draws within the caps
(the candidate sampler a search uses, around the token-share prior).

`law_opt_gap_<D>`: predicted target at the solver's optimum minus the best sampled one
(kl_reg 0: the target alone; must be <= 0); `law_opt_gap_kl_<D>`: the same for the full
objective with olmix's kl_reg 0.05; `law_solve_s_<D>`: one solve (the first, building the
problem, in `law_build_s_<D>`); `law_opt_gap`: the worst over sizes.

    python benchmarks/law_optimum.py [--json out.json] [--samples 1000000] [--quick]

`--quick`: 100,000 samples (same keys; the sampled best is then a little worse).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import parser, report  # noqa: E402
from mixer.bounds import WeightBounds  # noqa: E402
from mixer.sampling import SamplerConfig, draw_within_bounds  # noqa: E402
from search.law_optimum import LawProgram  # noqa: E402


def synthetic(D: int, seed: int):
    rng = np.random.default_rng(seed)
    t = rng.normal(0, 1, (D, D))
    prior = rng.dirichlet(np.full(D, 2.0))
    return rng.uniform(1, 2, D), rng.normal(0, 0.3, D), t - t.mean(axis=1, keepdims=True), prior, np.minimum(1, 4 * prior)


def objective(P: np.ndarray, c, b, t, prior, kl_reg: float, chunk: int = 50_000) -> np.ndarray:
    out = []
    for i in range(0, len(P), chunk):
        Q = P[i:i + chunk]
        value = (c[None] + np.exp(b[None] + Q @ t.T)).mean(axis=1)
        out.append(value + kl_reg * (Q * np.log(np.maximum(Q, 1e-12) / prior)).sum(axis=1))
    return np.concatenate(out)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--samples", type=int, default=1_000_000)
    p.add_argument("--quick", action="store_true", help="100,000 samples (same keys)")
    args = p.parse_args()
    if args.quick:
        args.samples = 100_000
    figures: dict = {}
    for D in (17, 64):
        c, b, t, prior, caps = synthetic(D, D)
        bounds = WeightBounds.of([f"d{i}" for i in range(D)], caps=caps)
        draws = np.vstack([draw_within_bounds(prior, args.samples // 10, np.random.default_rng([D, k]), SamplerConfig(),
                                              bounds) for k in range(10)])
        for kl_reg, key in ((0.0, f"law_opt_gap_{D}"), (0.05, f"law_opt_gap_kl_{D}")):
            start = time.perf_counter()
            program = LawProgram(prior, bounds, kl_reg, D)
            build = time.perf_counter() - start
            solved = program.solve(b, t, np.full(D, 1.0 / D))
            first = time.perf_counter() - start - build
            start = time.perf_counter()
            program.solve(b + 0.01, t, np.full(D, 1.0 / D))
            again = time.perf_counter() - start
            assert abs(solved.sum() - 1) < 1e-8 and (solved <= caps + 1e-7).all()
            figures[key] = float(objective(solved[None], c, b, t, prior, kl_reg)[0]
                                 - objective(draws, c, b, t, prior, kl_reg).min())
            if kl_reg:
                figures[f"law_build_s_{D}"], figures[f"law_solve_s_{D}"] = build + first, again
        figures[f"samples_{D}"] = len(draws)
    figures["law_opt_gap"] = max(figures["law_opt_gap_17"], figures["law_opt_gap_64"])
    report("Mixing-law optimum: cvxpy against brute force", figures,
           {"law_opt_gap": "<= 0", "law_solve_s_17": "< 1", "law_solve_s_64": "< 1"}, args.json)


if __name__ == "__main__":
    main()
