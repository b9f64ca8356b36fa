"""A hierarchical search (`search start --hierarchical`) against a flat one over 64 leaf
domains, at equal run budget, on real proxy runs.

The corpus: each of the five domains of ../shared/corpus/ loses a tenth of its documents
to an eval-only set (`<source>-eval`, never trained on), and the rest is clustered into
leaves under the source (`corpus cluster <source> ...`: `<source>/00`, ...), 64 leaves in
all. The target: the mean held-out loss over the five eval-only sets (a team's own target
text, one part per source). Per seed: a hierarchical regmix search with `--runs` proposed
runs (stage 1 mixes the five sources, then each source's leaves), then a flat regmix search
over the 64 leaves given as many trained runs in all as the hierarchical one used (its
baselines and every stage's included). Each answer is trained on 2 fresh seeds (the same
two for both); the token-share mixture too, as a reference. Keys: `hier_vs_flat_gain`
(the flat answer's mean target minus the hierarchical one's, averaged over seeds: > 0 when
the hierarchy helps), `hier_vs_token_share_gain`, `flat_vs_token_share_gain`, `hier_runs`
and `flat_runs` (trained runs per search, mean over seeds), `seed_std` (one fresh run's
seed noise), `hier_wins` (share of seeds the hierarchical answer measured lower).

    python benchmarks/hierarchy.py [--json out.json] [--seeds 3] [--runs 32] [--tokens 300k] [--quick]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import CORPUS, CORPUS_DOMAINS, parser, report  # noqa: E402
from mixer.mixture import Mixture, parse_count  # noqa: E402

CLUSTERS = {"math": 13, "reviews": 13, "shakespeare": 12, "speeches": 13, "wikipedia": 13}   # 64 leaves
EVAL_SHARE = 0.1
FRESH_SEEDS = 2


def build_workspace(root: Path, clusters: dict[str, int]):
    """The leaves and eval-only sets of the module doc, in a new workspace under `root`."""
    from mixer.clustering import ClusterRequest
    from mixer.clustering.model import ClusterConfig
    from mixer.corpus import AddRequest
    from mixer.ingest import IngestConfig
    from mixer.workspace import open_workspace
    from search.domains import add_domain, cluster_domains

    ws = open_workspace(root / "ws")
    for source in CORPUS_DOMAINS:
        lines = [line for line in (CORPUS / f"{source}.jsonl").read_text().split("\n") if line]
        cut = len(lines) - max(4, int(len(lines) * EVAL_SHARE))
        (root / f"{source}-train.jsonl").write_text("\n".join(lines[:cut]) + "\n")
        (root / f"{source}-eval.jsonl").write_text("\n".join(lines[cut:]) + "\n")
        add_domain(ws, AddRequest(name=f"{source}-eval", sources=[root / f"{source}-eval.jsonl"],
                                  ingest=IngestConfig(eval_only=True)))
        cluster_domains(ws, ClusterRequest(name=source, sources=[root / f"{source}-train.jsonl"],
                                           cluster=ClusterConfig(clusters=clusters[source], min_cluster_docs=2)))
    return ws


def trained_runs(ws, names: list[str]) -> int:
    from store import run_sql

    quoted = ", ".join(f"'{n}'" for n in names)
    return int(run_sql(ws.db_path, f"select count(*) as n from runs r join searches s on r.search_id = s.id "
                                   f"where s.name in ({quoted}) and r.status = 'done'").n[0])


def fresh_values(session, mixtures: dict[str, Mixture]) -> dict[str, list[float]]:
    """Each mixture's target on FRESH_SEEDS fresh seeds (the same seeds for every mixture)."""
    from search.extra_runs import evaluate_extra
    from store.records import RunRole

    extra = evaluate_extra(session, mixtures, RunRole.validation, seeds=FRESH_SEEDS, first_seed=100)
    values = {label: [session.setup.target_value(r.result.values) for k, r in extra.items()
                      if k.startswith(f"{label}/")] for label in mixtures}
    return values


def one_seed(ws, seed: int, runs: int, tokens: int, target: str) -> dict:
    from proxies.train import TrainConfig
    from search import driver, staged
    from search.groups import expand
    from search.session import SearchSession
    from search.spec import Budget, ProxySpec, SearchSpec
    from search.targets import Target
    from store import get_search

    train = TrainConfig(preset="tiny", tokens=tokens, seq_len=128, batch_size=16)

    def spec(name: str, n: int) -> SearchSpec:
        return SearchSpec(name=name, backend="regmix", seed=seed, budget=Budget(runs=n, parallel=2),
                          target=Target(target), proxy=ProxySpec(train=train))

    clock = time.perf_counter()
    hier_name, _ = staged.start(ws, spec(f"hier-{seed}", runs), lambda r: driver.run(ws, r.id), say=print)
    hier = SearchSession(ws, get_search(ws.db_path, hier_name))
    stages = [hier_name] + [staged.stage_name(hier_name, i) for i in range(1, len(CLUSTERS) + 2)]
    hier_runs = trained_runs(ws, stages)
    hier_s = time.perf_counter() - clock
    clock = time.perf_counter()
    flat_record = driver.create(ws, spec(f"flat-{seed}", hier_runs))   # baselines count in both budgets
    driver.run(ws, flat_record.id)
    flat = SearchSession(ws, flat_record)
    flat_runs = trained_runs(ws, [flat_record.name])
    flat_s = time.perf_counter() - clock
    hier_answer = expand(_answer(ws, hier.record), hier.spec.proxy.groups)
    flat_answer = _answer(ws, flat_record)
    share = dict(zip(flat.setup.space.domains, _token_shares(ws, flat.setup.space.domains)))
    values = fresh_values(flat, {"hier": Mixture(hier_answer), "flat": Mixture(flat_answer),
                                "token_share": Mixture(share)})
    means = {k: float(np.mean(v)) for k, v in values.items()}
    print(f"seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in means.items())
          + f"; runs hier {hier_runs} flat {flat_runs}", flush=True)
    return {"means": means, "values": values, "hier_runs": hier_runs, "flat_runs": flat_runs,
            "hier_s": hier_s, "flat_s": flat_s}


def _answer(ws, record) -> dict[str, float]:
    from store import latest_recommendation

    return dict(latest_recommendation(ws.db_path, record.id)["mixture"])


def _token_shares(ws, names: list[str]) -> np.ndarray:
    from mixer.domain import training_domains

    tokens = {m.name: m.n_tokens for m in training_domains(ws.domains_dir)}
    counts = np.array([tokens[n] for n in names], dtype=np.float64)
    return counts / counts.sum()


def summarise(rows: list[dict]) -> dict:
    deviations = [np.array(v) - np.mean(v) for r in rows for v in r["values"].values()]
    dof = sum(len(d) - 1 for d in deviations)
    gain = lambda a, b: float(np.mean([r["means"][a] - r["means"][b] for r in rows]))  # noqa: E731
    return {"hier_vs_flat_gain": gain("flat", "hier"), "hier_vs_token_share_gain": gain("token_share", "hier"),
            "flat_vs_token_share_gain": gain("token_share", "flat"),
            "hier_wins": float(np.mean([r["means"]["hier"] < r["means"]["flat"] for r in rows])),
            "hier_runs": float(np.mean([r["hier_runs"] for r in rows])),
            "flat_runs": float(np.mean([r["flat_runs"] for r in rows])),
            "seed_std": float(np.sqrt(sum(float(np.sum(d ** 2)) for d in deviations) / max(dof, 1))),
            "hier_wall_s": float(np.mean([r["hier_s"] for r in rows])),
            "flat_wall_s": float(np.mean([r["flat_s"] for r in rows]))}


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--runs", type=int, default=32)
    p.add_argument("--tokens", default="300k")
    p.add_argument("--quick", action="store_true", help="1 seed, 8 runs, 50k tokens (a few minutes)")
    args = p.parse_args()
    if not CORPUS.is_dir():
        sys.exit(f"shared corpus not found at {CORPUS}")
    seeds, runs, tokens = (1, 8, parse_count("50k")) if args.quick else (args.seeds, args.runs,
                                                                           parse_count(args.tokens))
    target = ",".join(f"{s}-eval={1 / len(CORPUS_DOMAINS)}" for s in CORPUS_DOMAINS)
    clock = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ws = build_workspace(Path(tmp), CLUSTERS)
        rows = [one_seed(ws, seed, runs, tokens, target) for seed in range(seeds)]
    figures = summarise(rows) | {"seeds": seeds, "runs": runs, "tokens": tokens, "leaves": sum(CLUSTERS.values()),
                                 "total_wall_s": time.perf_counter() - clock,
                                 "per_seed": json.dumps([r["means"] for r in rows])}
    report("hierarchical vs flat search over 64 leaves (tiny proxies)", figures,
           {"hier_vs_flat_gain": "> 0 (beyond seed_std / sqrt(2 x seeds))", "hier_runs": "= flat_runs"}, args.json)


if __name__ == "__main__":
    main()
