"""Small real searches, as a user runs them: can the recommendation be trusted?

    python benchmarks/small_search.py [--json out.json] [--tokens 600000] [--seeds 3] [--first-seed 0] [--target avg]

The five domains of ../shared/corpus/, tiny proxies (byte tokenizer), budgets of 8 and 16
runs (2 in parallel), 3 search seeds per backend. Each backend runs one 16-run search per
seed; its 8-run recommendation is the one the guarded backend gives from the first 8 runs
(an 8-run search proposes exactly those: proposals depend on the seed and the runs so
far, not on the budget). Each recommendation, and the uniform and token-share mixtures,
is then trained with 3 replicate seeds, the same seeds for every mixture of a search seed
(the baselines once per search seed, shared by the backends). `--target`: what the
searches minimise (search.targets): `avg` over the five domains (the default), or one
domain's held-out loss as in RegMix (Pile-CC's), e.g. `wikipedia`.

Figures per backend and budget:
- `regret_vs_best_observed`: mean over search seeds of (recommendation's 3-seed mean minus
  the best run the search observed); the best observed value is one lucky seed, so
  slightly positive is expected even for a perfect choice;
- `wins_vs_uniform`, `wins_vs_token_share`: fraction of search seeds where the
  recommendation beats the baseline by more than the seed std (search.compare);
- `duplicate_runs`: pairs of runs of one search closer than the novelty distance;
- `corner_runs`: runs with 95% or more of their weight on one domain (over all seeds);
- `coverage_1sd`: fraction of replicate runs within the recommendation's predicted +-1 std
  (0.68 is honest; none for random, which predicts nothing);
- `coverage_fresh_seed_1sd`: the same with the ± a user is shown for a fresh seed
  (`search.extra_runs.fresh_seed` around `shown_value`: the search's shared
  initialisation's offset, measured on the baselines' replicate seeds against the search's
  own runs of the same mixtures; goal 0.6-0.8; random runs no baseline mixture, so its
  pairs are its answer's replicates against the search's run of it, as `--replicates`
  gives a user). Each replicate run is judged by the ± from the other replicate seeds' pairs:
  its own seed's pairs would cancel its offset (the seeds are shared with the baselines).

The multi-fidelity case (`mf_*`): per search seed, a bayesopt search over two token budgets
(a quarter of --tokens, and --tokens as the target) with a cost budget of 10 target runs;
its recommendation trained with the replicate seeds. `mf_baselines_at_target`: fraction of
seeds whose search ran both baselines at the target fidelity (must be 1.0);
`mf_wins_vs_uniform`, `mf_wins_vs_token_share`: as above.

`--quick`: one seed, 150k tokens, random and regmix, the multi-fidelity case (same keys).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import parser, report, search_and_answers  # noqa: E402
from mixer.corpus import AddRequest, add_corpus  # noqa: E402
from mixer.domain import list_domains  # noqa: E402
from mixer.mixture import Mixture  # noqa: E402
from mixer.workspace import Workspace, open_workspace  # noqa: E402
from proxies.train import TrainConfig  # noqa: E402
from search.backends.base import MIN_DISTANCE  # noqa: E402
from search.compare import SeedStats, verdict  # noqa: E402
from search.backends.base import unmeasured_baselines  # noqa: E402
from search.extra_runs import evaluate_extra, fresh_seed, shown_value  # noqa: E402
from search.fidelity import proxy_label  # noqa: E402
from search.spec import FidelitySpec  # noqa: E402
from store import latest_recommendation  # noqa: E402
from search.runs import weight_matrix  # noqa: E402
from store.records import RunRole  # noqa: E402
from search.spec import Budget, ProxySpec, SearchSpec  # noqa: E402
from search.targets import Target  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
DOMAINS = ["math", "reviews", "shakespeare", "speeches", "wikipedia"]
BACKENDS = ["random", "regmix", "bayesopt", "climb"]
BUDGETS = [8, 16]


def build_workspace(root: Path) -> Workspace:
    ws = open_workspace(root)
    for name in DOMAINS:
        add_corpus(ws, AddRequest(name=name, sources=[CORPUS / f"{name}.jsonl"]))
    return ws


def baseline_mixtures(ws: Workspace) -> dict[str, np.ndarray]:
    metas = {m.name: m for m in list_domains(ws.domains_dir)}
    return {"uniform": Mixture.uniform(DOMAINS).vector(DOMAINS),
            "token-share": Mixture.normalized({n: metas[n].n_tokens for n in DOMAINS}).vector(DOMAINS)}


def weights(runs) -> np.ndarray:
    """The runs' mixtures [n, D] over DOMAINS."""
    return weight_matrix(runs.mixture, DOMAINS)


def corners(runs) -> int:
    """Runs with 95% or more of their weight on one domain."""
    return int((weights(runs).max(axis=1) >= 0.95).sum())


def duplicates(runs) -> int:
    X = weights(runs)
    distance = np.abs(X[:, None, :] - X[None, :, :]).sum(axis=2)
    return int(np.triu(distance < MIN_DISTANCE, k=1).sum())


def one_search(ws: Workspace, backend: str, seed: int, tokens: int, replicates: int,
               baselines: dict[str, SeedStats], target: Target) -> dict:
    """One 16-run search, its 8- and 16-run recommendations, and their replicate runs; the
    baselines are trained in the first search of each seed (`baselines` empty) and reused
    by the others (the same replicate seeds, so comparisons stay paired)."""
    train = TrainConfig(preset="tiny", tokens=tokens, seq_len=128, batch_size=16)
    spec = SearchSpec(name=f"{backend}-s{seed}", backend=backend, seed=seed, validate=False, target=target,
                      budget=Budget(runs=max(BUDGETS), parallel=2), proxy=ProxySpec(train=train, domains=DOMAINS))
    start = time.perf_counter()
    session, recs = search_and_answers(ws, spec, BUDGETS)
    own = session.load().own.sort_values("run_id")
    metas = {m.name: m for m in list_domains(ws.domains_dir)}
    mixtures = {f"rec{b}": r.mixture for b, r in recs.items()}
    if not baselines:
        mixtures |= {"uniform": Mixture.uniform(DOMAINS),
                     "token-share": Mixture.normalized({n: metas[n].n_tokens for n in DOMAINS})}
    roles = {label: RunRole.validation if label.startswith("rec") else RunRole.baseline for label in mixtures}
    extra = evaluate_extra(session, mixtures, roles, seeds=replicates)
    values = {label: SeedStats(label, tuple(float(session.setup.target_value(r.result.values))
                                            for key, r in extra.items() if key.split("/")[0] == label))
              for label in mixtures}
    baselines.update({k: v for k, v in values.items() if not k.startswith("rec")})
    values |= baselines
    out = {"wall_s": time.perf_counter() - start}
    anchors = baseline_mixtures(ws)
    for budget, rec in recs.items():
        stats = values[f"rec{budget}"]
        best = float(own.iloc[:budget].target_value.min())
        predicts = rec.predicted is not None and rec.evidence.get("rule") != "no-model"
        inside = [abs(v - rec.predicted) <= rec.predicted_std for v in stats.values] if predicts else []
        pairs = init_offsets(own.iloc[:budget], values, target, anchors)
        if pairs.size == 0:    # random runs no baseline: its answer's own replicates pair with its run
            pairs = init_offsets(own.iloc[:budget], values, target,
                                 {f"rec{budget}": rec.mixture.vector(DOMAINS)}, labels=(f"rec{budget}",))
        inside_fresh = fresh_seed_coverage(rec, stats, pairs, target)
        out[budget] = {"regret": stats.mean - best, "rec_mean": stats.mean, "best": best,
                       "predicted": rec.predicted, "predicted_std": rec.predicted_std,
                       "rule": rec.evidence.get("rule"), "inside": inside, "inside_fresh": inside_fresh,
                       "cv_rmse": (rec.evidence.get("quality") or {}).get("cv_rmse"),
                       "win_uniform": verdict(stats, values["uniform"], target).significant,
                       "win_token_share": verdict(stats, values["token-share"], target).significant,
                       "duplicates": duplicates(own.iloc[:budget]), "corners": corners(own.iloc[:budget])}
    out["baselines"] = {k: values[k].mean for k in ("uniform", "token-share")}
    return out


def init_offsets(own, values: dict[str, SeedStats], target: Target, anchors: dict[str, np.ndarray],
                 labels: tuple[str, ...] = ("uniform", "token-share")) -> np.ndarray:
    """The pairs of `search.extra_runs.init_offsets` here, d [replicate seed, pair]: each
    of `labels`' replicate seeds (the baselines') against the search's own run of the same
    mixture (the baselines are trained once per search seed, in the first backend's search,
    so they are paired by hand)."""
    X = weights(own)
    d = []
    for label in labels:
        row = np.flatnonzero(np.abs(X - anchors[label]).sum(axis=1) < 1e-6)
        if len(row):
            d.append([target.loss(float(own.iloc[row[0]].target_value)) - target.loss(v) for v in values[label].values])
    return np.array(d, dtype=np.float64).T.reshape(len(values["uniform"].values), -1)


def fresh_seed_coverage(rec, stats: SeedStats, d: np.ndarray, target: Target) -> list[bool]:
    """Whether each replicate run of the answer lies within the ± a user is shown for a fresh
    seed, that ± built from the other replicate seeds' pairs only: the replicate seeds are
    shared with the baselines, and a seed's own pairs would cancel its offset exactly (a
    user's fresh seed is none of the seeds measured)."""
    inside = []
    shown, shown_std = shown_value(rec.predicted, rec.predicted_std, rec.evidence)
    for k, value in enumerate(stats.values):
        others = np.delete(d, k, axis=0).ravel()
        fresh = fresh_seed(target.loss(shown), shown_std, others)
        if fresh is not None:
            inside.append(abs(target.loss(value) - fresh[0]) <= fresh[1])
    return inside


def one_mf_search(ws: Workspace, seed: int, tokens: int, replicates: int, baselines: dict[str, SeedStats],
                  target: Target) -> dict:
    """A bayesopt search over two token budgets (a quarter of `tokens`, and `tokens` as the
    target) with a cost budget of 10 target runs; its recommendation with the replicate
    seeds against the seed's baselines (trained at the target fidelity, paired seeds)."""
    from search import driver
    from search.session import SearchSession

    cheap, full = proxy_label(f"tiny:{tokens // 4}"), proxy_label(f"tiny:{tokens}")
    train = TrainConfig(preset="tiny", tokens=tokens, seq_len=128, batch_size=16)
    spec = SearchSpec(name=f"mf-s{seed}", backend="bayesopt", seed=seed, validate=False, target=target,
                      budget=Budget(runs=100, parallel=2, max_cost=10.0), fidelity=FidelitySpec(labels=[cheap, full]),
                      proxy=ProxySpec(train=train, domains=DOMAINS))
    start = time.perf_counter()
    record = driver.create(ws, spec)
    driver.run(ws, record.name)
    session = SearchSession(ws, record)
    state = session.load()
    rec = latest_recommendation(ws.db_path, record.id)
    extra = evaluate_extra(session, {"rec": Mixture.normalized(rec["mixture"])}, RunRole.validation, seeds=replicates)
    stats = SeedStats("rec", tuple(float(session.setup.target_value(r.result.values)) for r in extra.values()))
    runs = state.own
    return {"wall_s": time.perf_counter() - start, "rec_mean": stats.mean, "rule": rec["evidence"].get("rule"),
            "baselines_at_target": not unmeasured_baselines(state.setup.space, state.history),
            "runs_by_fidelity": {f: int((runs.fidelity == f).sum()) for f in (cheap, full)},
            "win_uniform": verdict(stats, baselines["uniform"], target).significant,
            "win_token_share": verdict(stats, baselines["token-share"], target).significant}


def summarise(results: dict) -> dict:
    figures = {}
    for backend, by_seed in results.items():
        for budget in BUDGETS:
            rows = [r[budget] for r in by_seed]
            inside = [x for r in rows for x in r["inside"]]
            key = f"{backend}_{budget}"
            figures[f"regret_vs_best_observed_{key}"] = float(np.mean([r["regret"] for r in rows]))
            figures[f"wins_vs_uniform_{key}"] = float(np.mean([r["win_uniform"] for r in rows]))
            figures[f"wins_vs_token_share_{key}"] = float(np.mean([r["win_token_share"] for r in rows]))
            figures[f"duplicate_runs_{key}"] = int(sum(r["duplicates"] for r in rows))
            figures[f"corner_runs_{key}"] = int(sum(r["corners"] for r in rows))
            figures[f"coverage_1sd_{key}"] = float(np.mean(inside)) if inside else "none"
            fresh = [x for r in rows for x in r["inside_fresh"]]
            figures[f"coverage_fresh_seed_1sd_{key}"] = float(np.mean(fresh)) if fresh else "none"
            figures[f"rules_{key}"] = ",".join(str(r["rule"]) for r in rows)
        figures[f"wall_s_{backend}"] = float(sum(r["wall_s"] for r in by_seed))
    return figures


def summarise_mf(rows: list[dict]) -> dict:
    return {"mf_baselines_at_target": float(np.mean([r["baselines_at_target"] for r in rows])),
            "mf_wins_vs_uniform": float(np.mean([r["win_uniform"] for r in rows])),
            "mf_wins_vs_token_share": float(np.mean([r["win_token_share"] for r in rows])),
            "mf_rules": ",".join(str(r["rule"]) for r in rows),
            "mf_runs_by_fidelity": ";".join(",".join(f"{k.split(':')[1]}:{v}" for k, v in r["runs_by_fidelity"].items())
                                            for r in rows),
            "wall_s_mf": float(sum(r["wall_s"] for r in rows))}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--tokens", type=int, default=600_000, help="tokens per tiny proxy run")
    p.add_argument("--seeds", type=int, default=3, help="search seeds per backend")
    p.add_argument("--first-seed", type=int, default=0, help="the first search seed (later ones follow)")
    p.add_argument("--replicates", type=int, default=3, help="replicate seeds per measured mixture")
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument("--target", default="avg", help="what the searches minimise (avg, or a domain: wikipedia)")
    p.add_argument("--quick", action="store_true", help="1 seed, 150k tokens, random and regmix (same keys)")
    p.add_argument("--no-mf", action="store_true", help="skip the multi-fidelity case")
    args = p.parse_args()
    if args.quick:
        args.seeds, args.tokens, args.backends = 1, 150_000, "random,regmix"
    if not CORPUS.is_dir():
        sys.exit(f"the shared corpus is not at {CORPUS}")
    start = time.perf_counter()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        ws = build_workspace(Path(tmp) / "ws")
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        baselines: dict[int, dict] = {seed: {} for seed in seeds}
        for backend in args.backends.split(","):
            for seed in seeds:
                results.setdefault(backend, []).append(
                    one_search(ws, backend, seed, args.tokens, args.replicates, baselines[seed], Target(args.target)))
                r = results[backend][-1]
                print(f"{backend} seed {seed}: " + "; ".join(
                    f"{b} runs: rec {r[b]['rec_mean']:.4f} (predicted {r[b]['predicted'] or float('nan'):.4f} "
                    f"± {r[b]['predicted_std'] or float('nan'):.4f}, cv rmse {r[b]['cv_rmse'] or float('nan'):.4f}, fresh seeds "
                    f"inside {sum(r[b]['inside_fresh'])}/{len(r[b]['inside_fresh'])}) best {r[b]['best']:.4f} ({r[b]['rule']})"
                    for b in BUDGETS)
                    + f"; uniform {r['baselines']['uniform']:.4f} token-share {r['baselines']['token-share']:.4f}"
                    + f"; {r['wall_s']:.0f} s", flush=True)
        mf = [] if args.no_mf else [one_mf_search(ws, seed, args.tokens, args.replicates, baselines[seed],
                                                  Target(args.target)) for seed in seeds]
        for seed, r in zip(seeds, mf):
            print(f"mf seed {seed}: rec {r['rec_mean']:.4f} ({r['rule']}) runs {r['runs_by_fidelity']}, baselines at "
                  f"target: {r['baselines_at_target']}; {r['wall_s']:.0f} s", flush=True)
    figures = summarise(results) | (summarise_mf(mf) if mf else {})
    figures["total_wall_s"] = time.perf_counter() - start
    goals = {f"wins_vs_uniform_{b}_16": "> 0.5" for b in BACKENDS} | {f"duplicate_runs_{b}_{n}": "0" for b in BACKENDS
                                                                       for n in BUDGETS}
    goals |= {"total_wall_s": "< 3600", "mf_baselines_at_target": "1.0"}
    goals |= {f"coverage_fresh_seed_1sd_{b}_{n}": "0.6-0.8" for b in BACKENDS for n in BUDGETS}
    figures["target"] = args.target
    report(f"Small real searches (5 domains, tiny proxies, target {args.target})", figures, goals, args.json)


if __name__ == "__main__":
    main()
