"""`mixer corpus cluster` against the truth: the five domains of ../shared/corpus/
concatenated and shuffled, labels hidden, clustered into 5 with the shipped defaults
(256 initial clusters, min 8 documents, sample 50,000), for each embedder and seed.

`ari_<embedder>`, `nmi_<embedder>`: adjusted Rand index and normalised mutual information
(scikit-learn) against the true domains, mean over `--seeds`; `min_source_recall_<embedder>`:
the smallest per-source recall (`source_recalls`: the share of a source's documents in a
cluster of its own), mean over seeds; `ari_builtin_lsa`, `min_source_recall_builtin_lsa`:
the same on the built-in domains (python, cpp, docs, licenses) clustered into 4, a corpus
the defaults were not chosen on; `docs_per_s_<embedder>`:
documents per second of embed + cluster + assign (reading included, the tokenisation of
the new domains not); `seconds_1e5_docs`, `docs_per_s_1e5_docs`, `peak_rss_mb_1e5_docs`:
the corpus cycled to 100,000 documents, clustered with lsa in a fresh process (peak
resident memory of that process, the whole command including the domain writes).

    python benchmarks/cluster.py [--json out.json] [--seeds 3] [--embedders lsa,proxy] [--quick]
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import CORPUS, CORPUS_DOMAINS, parser, report  # noqa: E402


def write_mixed(path: Path, n_docs: int | None = None) -> np.ndarray:
    """The five domains shuffled into one JSONL (cycled to `n_docs` when given); the labels."""
    rows = []
    for label, name in enumerate(CORPUS_DOMAINS):
        with open(CORPUS / f"{name}.jsonl") as f:
            rows += [(json.loads(line)["text"], label) for line in f if line.strip()]
    if n_docs:
        rows = [rows[i % len(rows)] for i in range(n_docs)]
    random.Random(0).shuffle(rows)
    path.write_text("".join(json.dumps({"text": text}) + "\n" for text, _ in rows))
    return np.array([label for _, label in rows])


def write_builtin(path: Path) -> np.ndarray:
    """The built-in domains (mixer.builtin: python, cpp, docs, licenses; 3 MB each at most)
    shuffled into one JSONL: a second corpus, not the one the merge was chosen on."""
    from mixer.builtin import BUILTINS, builtin_documents

    rows = [(text, label) for label, name in enumerate(BUILTINS)
            for _, text in builtin_documents(name, max_bytes=3_000_000)]
    random.Random(0).shuffle(rows)
    path.write_text("".join(json.dumps({"text": text}) + "\n" for text, _ in rows))
    return np.array([label for _, label in rows])


def cluster_once(source: Path, root: Path, embedder: str, seed: int, clusters: int = 5) -> tuple[np.ndarray, dict]:
    import pandas as pd

    from mixer.clustering import ClusterConfig, ClusterRequest
    from mixer.clustering.build import ASSIGNMENT
    from mixer.workspace import open_workspace
    from search.domains import cluster_domains

    ws = open_workspace(root)
    result = cluster_domains(ws, ClusterRequest(name="web", sources=[source], embedder=embedder,
                                                cluster=ClusterConfig(clusters=clusters, seed=seed)))
    return pd.read_parquet(ws.clusterings_dir / "web" / ASSIGNMENT).cluster.to_numpy(), result.seconds


def source_recalls(labels: np.ndarray, assigned: np.ndarray) -> np.ndarray:
    """[sources]: for each true source, the share of its documents in the largest cluster
    that is its own (a cluster whose documents are mostly that source); 0 when the source
    owns no cluster (merged into another's). ARI hides a small source merged away; this
    does not."""
    recalls = np.zeros(labels.max() + 1)
    for c in np.unique(assigned):
        members = labels[assigned == c]
        owner = np.bincount(members).argmax()
        recalls[owner] = max(recalls[owner], (members == owner).sum() / (labels == owner).sum())
    return recalls


def _child(source: str, root: str) -> None:
    """Run in a fresh process: cluster, then print the timings and the peak RSS."""
    start = time.perf_counter()
    _, seconds = cluster_once(Path(source), Path(root), "lsa", 0)
    seconds["total"] = time.perf_counter() - start
    seconds["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(seconds))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        return _child(sys.argv[2], sys.argv[3])
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--embedders", default="lsa,proxy")
    p.add_argument("--quick", action="store_true", help="one seed, lsa only (same keys for lsa)")
    args = p.parse_args()
    if args.quick:
        args.seeds, args.embedders = 1, "lsa"
    if not CORPUS.is_dir():
        sys.exit(f"shared corpus not found at {CORPUS}")
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        labels = write_mixed(tmp / "all.jsonl")
        for embedder in args.embedders.split(","):
            aris, nmis, rates, recalls = [], [], [], []
            for seed in range(args.seeds):
                assigned, seconds = cluster_once(tmp / "all.jsonl", tmp / f"ws-{embedder}-{seed}", embedder, seed)
                aris.append(adjusted_rand_score(labels, assigned))
                nmis.append(normalized_mutual_info_score(labels, assigned))
                recalls.append(source_recalls(labels, assigned))
                rates.append(len(labels) / (seconds["read"] + seconds["fit"] + seconds["cluster"] + seconds["assign"]))
                print(f"{embedder} seed {seed}: ari {aris[-1]:.3f} nmi {nmis[-1]:.3f} recall per source "
                      f"{' '.join(f'{n} {r:.2f}' for n, r in zip(CORPUS_DOMAINS, recalls[-1]))} "
                      f"{rates[-1]:.0f} docs/s {json.dumps({k: round(v, 2) for k, v in seconds.items()})}", flush=True)
            figures[f"ari_{embedder}"] = float(np.mean(aris))
            figures[f"ari_{embedder}_per_seed"] = " ".join(f"{a:.3f}" for a in aris)
            figures[f"nmi_{embedder}"] = float(np.mean(nmis))
            figures[f"min_source_recall_{embedder}"] = float(np.mean([r.min() for r in recalls]))
            figures[f"source_recall_{embedder}"] = " ".join(
                f"{n} {r:.2f}" for n, r in zip(CORPUS_DOMAINS, np.mean(recalls, axis=0)))
            figures[f"docs_per_s_{embedder}"] = float(np.median(rates))
        figures["docs"] = int(len(labels))

        builtin = write_builtin(tmp / "builtin.jsonl")
        scores = []
        for seed in range(args.seeds):
            assigned, _ = cluster_once(tmp / "builtin.jsonl", tmp / f"ws-builtin-{seed}", "lsa", seed, clusters=4)
            scores.append((adjusted_rand_score(builtin, assigned), source_recalls(builtin, assigned).min()))
            print(f"built-in domains, lsa seed {seed}: ari {scores[-1][0]:.3f} min recall {scores[-1][1]:.2f}", flush=True)
        figures["ari_builtin_lsa"] = float(np.mean([a for a, _ in scores]))
        figures["min_source_recall_builtin_lsa"] = float(np.mean([r for _, r in scores]))
        figures["docs_builtin"] = int(len(builtin))

        write_mixed(tmp / "big.jsonl", n_docs=100_000)
        child = subprocess.run([sys.executable, __file__, "--child", str(tmp / "big.jsonl"), str(tmp / "ws-big")],
                               capture_output=True, text=True, check=True)
        big = json.loads(child.stdout.strip().splitlines()[-1])
        clustered = big["read"] + big["fit"] + big["cluster"] + big["assign"]
        figures["seconds_1e5_docs"] = clustered
        figures["seconds_1e5_docs_with_domain_writes"] = big["total"]
        figures["docs_per_s_1e5_docs"] = 100_000 / clustered
        figures["peak_rss_mb_1e5_docs"] = big["peak_rss_mb"]
    report("clustering the shared corpus into 5 (labels hidden)", figures,
           {"ari_lsa": ">= 0.9", "min_source_recall_lsa": ">= 0.8", "seconds_1e5_docs": "< 60"}, args.json)


if __name__ == "__main__":
    main()
