"""Does extrapolating a ladder of cheap runs rank mixtures at the target fidelity better than
the cheap runs themselves? Data Mixing Laws' nested pipeline (search.scaling, then the
mixing law), measured on real proxy runs.

The same `--mixtures` Dirichlet mixtures (around the token-share prior, the search's
sampler) of the five domains of ../shared/corpus/ are trained at every rung of a token
ladder (`--rungs` budgets, each half the next, the largest a quarter of the target) and at
the target budget (`--target-tokens`), tiny proxies, target = average held-out loss, for
each of `--seeds` seeds (a seed sets initialisation and data order).

The first two mixtures play a search's baselines: measured at the target as well, and left
out of the figures, which rank the other mixtures. Keys, each a mean over seeds (per seed
under `per_seed`):
- `spearman_target_extrapolated`: rank correlation of the extrapolated targets
  (`search.scaling.extrapolated`, per-domain losses extrapolated and averaged, as
  mixing_law does) with the measured target runs; `..._anchored`: with the baselines'
  target runs pinning the exponents, as in a search.
- `spearman_target_rung_<tokens>`: the same for the raw values at each rung (the largest
  rung is what a single-fidelity search at that budget would rank by).
- `mae_target_extrapolated`, `mae_target_rung_<largest>`: mean absolute error in loss.
- `spearman_target_law_extrapolated`, `spearman_target_law_rung_<largest>`: the ranks of the
  measured target runs by mixing_law's out-of-fold predictions, fitted on the extrapolated
  targets or on the largest rung (5 folds): the law's view, not just the raw values.
- `ladder_cost`: the ladder's tokens per mixture over the target's (what one extrapolated
  mixture costs, in target runs).
- `spearman_target_seed_vs_seed` (two seeds or more): how well one seed's target runs rank
  another's, the ceiling of every `spearman_target_*` figure; `spearman_seed_mean_extrapolated`
  and `spearman_seed_mean_rung_<largest>`: the seeds' mean extrapolation and top-rung loss
  against the seeds' mean target (less seed noise on both sides).

    python benchmarks/nested_law.py [--json out.json] [--quick] [--seeds 3]
    python benchmarks/nested_law.py --reanalyse a.json b.json   # the figures again, seeds together, no training
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import CORPUS_DOMAINS as DOMAINS, corpus_domains, parser, report  # noqa: E402
from mixer.mixture import Mixture  # noqa: E402
from mixer.sampling import SamplerConfig, draw_within_bounds, prior_from_tokens  # noqa: E402
from proxies.train import TrainConfig, train_proxy  # noqa: E402
from search.fidelity import proxy_fidelities  # noqa: E402
from search.history import History, same_mixture  # noqa: E402
from search.scaling import extrapolated  # noqa: E402

PRESET = "tiny"
ANCHORS = 2   # mixtures measured at the target too, as a search measures its two baselines


def train_all(X: np.ndarray, budgets: list[int], seed: int, domains: dict) -> dict[int, np.ndarray]:
    """Per-domain held-out losses [mixtures, domains] of every mixture at every budget."""
    losses = {}
    for tokens in budgets:
        start = time.perf_counter()
        rows = []
        for x in X:
            cfg = TrainConfig(preset=PRESET, tokens=tokens, seq_len=256, batch_size=16, seed=seed, init_seed=seed,
                              device="cpu", threads=2)
            result = train_proxy(cfg, domains, Mixture.normalized(dict(zip(DOMAINS, x))))
            assert result.status == "done", result.error
            rows.append([result.val_loss[d] for d in DOMAINS])
        losses[tokens] = np.array(rows)
        print(f"seed {seed}: {len(X)} runs at {tokens} tokens in {time.perf_counter() - start:.0f} s", flush=True)
    return losses


def ladder_history(X: np.ndarray, losses: dict[int, np.ndarray], rungs: list[int], target: int,
                   anchors: int) -> History:
    """The rungs' runs, and the first `anchors` mixtures' target runs, as a search's
    History: per-domain losses, target their average."""
    budgets = [(t, np.arange(len(X))) for t in rungs] + [(target, np.arange(anchors))]
    labels = [f"{PRESET}:{t}" for t, rows in budgets for _ in rows]
    values = np.vstack([losses[t][rows] for t, rows in budgets])
    terms = np.full(len(DOMAINS), 1 / len(DOMAINS))
    return History(DOMAINS, np.vstack([X[rows] for _, rows in budgets]), values @ terms, labels,
                   [str(i) for i in range(len(labels))], [None] * len(labels), metrics=DOMAINS, values=values,
                   terms=terms)


def law_oof(X: np.ndarray, values: np.ndarray) -> np.ndarray:
    """mixing_law's out-of-fold predictions of the average loss (5 folds, the search's fit)."""
    from search.backends.mixing_law import MixingLawConfig, fit

    terms = np.full(len(DOMAINS), 1 / len(DOMAINS))
    history = History(DOMAINS, X, values @ terms, [None] * len(X), [str(i) for i in range(len(X))], [None] * len(X),
                      metrics=DOMAINS, values=values, terms=terms)
    return fit(MixingLawConfig(bootstrap=1), history).quality.out_of_fold


def figures_of(X: np.ndarray, losses: dict[int, np.ndarray], rungs: list[int], target: int) -> dict[str, float]:
    """The keys of one seed. The first ANCHORS mixtures play a search's baselines: measured at
    the target too. The figures rank the other mixtures, from their ladders alone
    (`extrapolated`) or with the anchors' target runs pinning the shared exponents
    (`extrapolated_anchored`, what a mixing_law search does)."""
    rest = np.arange(ANCHORS, len(X))
    truth = losses[target].mean(axis=1)[rest]
    out: dict[str, float] = {}
    for name, anchors in (("extrapolated", 0), ("extrapolated_anchored", ANCHORS)):
        per_domain = extrapolated_losses(X, losses, rungs, target, anchors)[rest]
        predicted = per_domain.mean(axis=1)
        out[f"spearman_target_{name}"] = float(spearmanr(predicted, truth)[0])
        out[f"mae_target_{name}"] = float(np.abs(predicted - truth).mean())
        if name == "extrapolated":
            out["spearman_target_law_extrapolated"] = float(spearmanr(law_oof(X[rest], per_domain), truth)[0])
    for t in rungs:
        out[f"spearman_target_rung_{t}"] = float(spearmanr(losses[t].mean(axis=1)[rest], truth)[0])
    largest = losses[rungs[-1]][rest]
    out[f"mae_target_rung_{rungs[-1]}"] = float(np.abs(largest.mean(axis=1) - truth).mean())
    out[f"spearman_target_law_rung_{rungs[-1]}"] = float(spearmanr(law_oof(X[rest], largest), truth)[0])
    return out


def extrapolated_losses(X: np.ndarray, losses: dict[int, np.ndarray], rungs: list[int], target: int,
                        anchors: int) -> np.ndarray:
    """Each mixture's per-domain losses [M, domains] at the target, extrapolated from its
    ladder (the first `anchors` measured there too)."""
    fidelity = proxy_fidelities([f"{PRESET}:{t}" for t in rungs + [target]], f"{PRESET}:{target}", 512)
    history = ladder_history(X, losses, rungs, target, anchors)
    return rows_of(X, extrapolated(history, fidelity, huber_delta=0.5).history)


def extrapolated_targets(X, losses, rungs, target, anchors) -> np.ndarray:
    return extrapolated_losses(X, losses, rungs, target, anchors).mean(axis=1)


def rows_of(X: np.ndarray, at_target: History) -> np.ndarray:
    """The extrapolated per-domain losses [mixtures, domains] in the order of X."""
    out = np.empty((len(X), len(DOMAINS)))
    for x, values in zip(at_target.X, at_target.values):
        out[np.flatnonzero(same_mixture(X, x))[0]] = values
    return out


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--mixtures", type=int, default=16)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0, help="train seeds first-seed .. first-seed + seeds - 1")
    p.add_argument("--target-tokens", type=int, default=2_400_000)
    p.add_argument("--rungs", type=int, default=3, help="ladder budgets, each half the next (at least 3)")
    p.add_argument("--quick", action="store_true", help="8 mixtures, 1 seed, target 1.2M tokens (same keys)")
    p.add_argument("--reanalyse", type=Path, nargs="+", metavar="JSON",
                   help="the figures of earlier runs' JSON (their seeds together), no training")
    args = p.parse_args()
    if args.quick:
        args.mixtures, args.seeds, args.target_tokens = 8, 1, 1_200_000
    if args.rungs < 3 or args.mixtures < 8:
        p.error("--rungs must be at least 3 and --mixtures at least 8")
    start = time.perf_counter()
    if args.reanalyse:
        X, rungs, target, seeds, losses, seconds = merged(p, args.reanalyse)
    else:
        rungs = [args.target_tokens // 2 ** k for k in range(args.rungs + 1, 1, -1)]
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        X, target, losses = trained(args.mixtures, seeds, rungs, args.target_tokens)
    summary, per_seed = summarised(X, losses, rungs, target)
    summary["seconds"] = seconds if args.reanalyse else time.perf_counter() - start   # of the training
    title = f"Nested law: {len(X)} mixtures, {PRESET} at {rungs} -> {target} tokens, {len(losses)} seeds"
    report(title, summary, {"spearman_target_extrapolated": f"> spearman_target_rung_{rungs[-1]}",
                            "spearman_target_seed_vs_seed": "the ceiling of every spearman_target_*"}, None)
    if args.json:
        import json

        raw = [{str(t): v.round(5).tolist() for t, v in seed.items()} for seed in losses]
        args.json.write_text(json.dumps({**summary, "per_seed": per_seed, "rungs": rungs, "target_tokens": target,
                                         "mixtures": X.tolist(), "domains": DOMAINS, "seeds": seeds,
                                         "losses": raw}, indent=2))


def merged(p, paths: list[Path]) -> tuple[np.ndarray, list[int], int, list[int], list[dict], float]:
    """Earlier runs' mixtures, rungs, target, seeds, losses per seed and training seconds,
    their seeds together (each run must have trained the same mixtures on the same ladder)."""
    import json

    runs = [json.loads(path.read_text()) for path in paths]
    first = runs[0]
    if any(r["mixtures"] != first["mixtures"] or r["rungs"] != first["rungs"]
           or r["target_tokens"] != first["target_tokens"] for r in runs):
        p.error("--reanalyse: the runs trained different mixtures or ladders")
    seeds = [s for r in runs for s in r.get("seeds", range(len(r["losses"])))]
    if len(set(seeds)) != len(seeds):
        p.error(f"--reanalyse: a seed appears twice ({seeds})")
    losses = [{int(t): np.array(v) for t, v in seed.items()} for r in runs for seed in r["losses"]]
    return (np.array(first["mixtures"]), first["rungs"], first["target_tokens"], seeds, losses,
            float(sum(r["seconds"] for r in runs)))


def trained(mixtures: int, seeds: list[int], rungs: list[int], target: int) -> tuple[np.ndarray, int, list[dict]]:
    """The mixtures [M, D], the target budget and, per seed, budget -> losses [M, domains]."""
    with tempfile.TemporaryDirectory() as tmp:
        domains = corpus_domains(Path(tmp))
        prior = prior_from_tokens({n: domains[n].meta.n_tokens for n in DOMAINS})
        X = draw_within_bounds(np.array(list(prior.values())), mixtures, np.random.default_rng(0), SamplerConfig())
        return X, target, [train_all(X, rungs + [target], seed, domains) for seed in seeds]


def summarised(X: np.ndarray, losses: list[dict], rungs: list[int], target: int) -> tuple[dict, list[dict]]:
    """The mean over seeds of each seed's figures, the ladder's cost and, with two seeds or
    more, `spearman_target_seed_vs_seed`: how well one seed's target runs rank the other's
    (mean over pairs of seeds), the ceiling of every figure against one seed's targets."""
    per_seed = [figures_of(X, seed, rungs, target) for seed in losses]
    summary = {key: float(np.mean([s[key] for s in per_seed])) for key in per_seed[0]}
    summary["ladder_cost"] = sum(rungs) / target
    rest = np.arange(ANCHORS, len(X))
    pairs = [(a, b) for a in range(len(losses)) for b in range(a + 1, len(losses))]
    if pairs:
        summary["spearman_target_seed_vs_seed"] = float(np.mean(
            [spearmanr(losses[a][target].mean(axis=1)[rest], losses[b][target].mean(axis=1)[rest])[0]
             for a, b in pairs]))
        truth = np.mean([seed[target].mean(axis=1)[rest] for seed in losses], axis=0)
        summary["spearman_seed_mean_extrapolated"] = float(spearmanr(np.mean(
            [extrapolated_targets(X, seed, rungs, target, 0)[rest] for seed in losses], axis=0), truth)[0])
        summary[f"spearman_seed_mean_rung_{rungs[-1]}"] = float(spearmanr(np.mean(
            [seed[rungs[-1]].mean(axis=1)[rest] for seed in losses], axis=0), truth)[0])
    return summary, per_seed


if __name__ == "__main__":
    main()
