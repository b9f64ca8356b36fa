"""`mixer corpus cluster`: one unlabeled corpus -> one domain per cluster, all or nothing.

Two streaming passes over the sources, so memory is bounded by the sample, not the corpus:

1. count the documents and keep a uniform sample (reservoir, seeded) of `--sample` texts;
   fit the embedder and the clustering (mixer.clustering.model) on it;
2. embed every document in batches, assign it to a cluster and spill its text to that
   cluster's scratch file.

Then each cluster's documents are tokenised into a staged domain `NAME-00`, `NAME-01`, ...
(largest cluster first), and the domains, the assignment (`doc` in source order ->
`cluster`, `domain`, `distance`) and a 2-D projection of the sample are moved into place
together. Any failure before that leaves the workspace as it was.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixer.clustering.embedders import Embedder, LmTrainer, make_embedder
from mixer.clustering.model import ClusterConfig, ClusterModel, fit_clusters
from mixer.clustering.terms import top_terms
from mixer.domain import DomainMeta, list_domains
from mixer.errors import MixerError
from mixer.ingest import IngestConfig, publish_domains, staging_folder, write_domain
from mixer.names import check_domain_name, domain_folder
from mixer.sources import ReadOptions, ReadStats, read_documents
from mixer.tokenizers import Tokenizer
from mixer.workspace import Workspace
from mixer.clustering.records import ClusteringRecord, ClusterRecord

ASSIGNMENT, PROJECTION, CENTROIDS = "assignment.parquet", "projection.parquet", "centroids.npy"
Progress = Callable[[str, int, "int | None"], None]   # phase, done, total


@dataclass
class ClusterRequest:
    name: str
    sources: list[Path]
    embedder: str = "lsa"
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    tokenizer: Path | None = None
    read: ReadOptions = field(default_factory=ReadOptions)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    batch_docs: int = 4096
    projection_points: int = 5000


@dataclass
class ClusteringResult:
    record: ClusteringRecord
    metas: list[DomainMeta]
    retired: list[str]                       # domains of the clustering this one replaced
    seconds: dict[str, float]                # read, fit (embedder + sample), cluster, assign, write
    bad_lines: int = 0                       # skipped with --skip-bad-lines


def domain_names(name: str, clusters: int) -> list[str]:
    width = max(2, len(str(clusters - 1)))
    return [check_domain_name(f"{name}/{i:0{width}d}") for i in range(clusters)]


def cluster_corpus(ws: Workspace, req: ClusterRequest, tokenizer: Tokenizer, previous: ClusteringRecord | None,
                   progress: Progress = lambda phase, done, total: None, trainer: LmTrainer | None = None
                   ) -> ClusteringResult:
    """Cluster the sources into domains (module docstring); the store is the caller's, and
    so is `trainer`, what trains the proxy embedder's LM."""
    check_domain_name(req.name, "clustering")
    names = domain_names(req.name, req.cluster.clusters)
    retired = replaced_domains(ws, req, previous)
    if not req.sources:
        raise MixerError("give the SOURCE files or directories to cluster")
    embedder = make_embedder(req.embedder, tokenizer, req.cluster.seed, trainer)
    seconds: dict[str, float] = {}

    clock = time.perf_counter()
    stats = ReadStats()
    n_docs, sample_ids, sample_texts = _sample(req, stats, progress)
    seconds["read"] = time.perf_counter() - clock
    if n_docs == 0:
        raise MixerError("no documents found in the sources (all empty)")
    if n_docs < 2 * req.cluster.clusters:
        raise MixerError(f"{n_docs} documents are fewer than 2 per cluster for --clusters {req.cluster.clusters} "
                         "(each domain holds one document out)")

    clock = time.perf_counter()
    embedder.fit(sample_texts, n_docs)
    sample_x = _embed_in_batches(embedder, sample_texts, sample_ids, req.batch_docs,
                                 lambda done: progress("embedding the sample", done, len(sample_ids)))
    seconds["fit"] = time.perf_counter() - clock
    clock = time.perf_counter()
    progress("clustering", 0, None)
    model = fit_clusters(sample_x, req.cluster)
    seconds["cluster"] = time.perf_counter() - clock

    with staging_folder(ws.domains_dir, f"cluster-{domain_folder(req.name)}") as staging:
        clock = time.perf_counter()
        labels, distances = _assign_and_spill(req, embedder, model, sample_ids, sample_x, n_docs, staging, progress)
        seconds["assign"] = time.perf_counter() - clock
        sizes = np.bincount(labels, minlength=model.n_clusters)
        rank = np.empty(model.n_clusters, dtype=np.int64)
        rank[np.argsort(-sizes, kind="stable")] = np.arange(model.n_clusters)
        if sizes.min() < 2:
            raise MixerError(f"a cluster got {int(sizes.min())} document(s); a domain needs 2 (one is held out): "
                             "lower --clusters or --min-cluster-docs")

        clock = time.perf_counter()
        metas = _write_domains(req, names, rank, staging, tokenizer, stats.bad_lines, progress)
        seconds["write"] = time.perf_counter() - clock
        sample_labels = rank[labels[sample_ids]]     # pass 2 assigned the sample too
        record = _record(req, embedder, model, rank, metas, n_docs, sample_texts, sample_labels)
        artefacts = staging / "clustering"
        _write_artefacts(artefacts, req, names, rank[labels], distances, model, rank, sample_ids, sample_x,
                         sample_labels)
        publish_domains(staging, names, ws.domains_dir, retire=retired)
        _publish_artefacts(artefacts, ws.clustering_dir(req.name))
    return ClusteringResult(record=record, metas=metas, retired=[r for r in retired if r not in names],
                            seconds=seconds, bad_lines=stats.bad_lines)


def replaced_domains(ws: Workspace, req: ClusterRequest, previous: ClusteringRecord | None) -> list[str]:
    """The existing domains this clustering would replace or remove: the previous
    clustering's. Refused: a previous clustering without --replace, and any other domain
    in the way (never overwritten, --replace or not)."""
    names = domain_names(check_domain_name(req.name, "clustering"), req.cluster.clusters)
    old = [c.domain for c in previous.clusters] if previous else []
    if previous and not req.ingest.replace:
        raise MixerError(f"clustering '{req.name}' already exists; use --replace to redo it")
    existing = {m.name for m in list_domains(ws.domains_dir)}
    taken = [n for n in names if n in existing and n not in old]
    if taken:
        raise MixerError(f"domain '{taken[0]}' exists and is not part of clustering '{req.name}'; remove it "
                         f"(`mixer corpus remove {taken[0]}`) or choose another clustering name")
    return [n for n in old if n in existing]


def _sample(req: ClusterRequest, stats: ReadStats, progress: Progress) -> tuple[int, np.ndarray, list[str]]:
    """Pass 1: (documents, sorted ids of a uniform sample, their texts), reservoir-sampled."""
    rng = random.Random(req.cluster.seed)
    k = req.cluster.sample
    ids: list[int] = []
    texts: list[str] = []
    n = 0
    for n, text in enumerate(read_documents(req.sources, req.read, stats), start=1):
        if len(ids) < k:
            ids.append(n - 1)
            texts.append(text)
        else:
            slot = rng.randrange(n)
            if slot < k:
                ids[slot], texts[slot] = n - 1, text
        if n % 10_000 == 0:
            progress("reading", n, None)
    order = np.argsort(ids, kind="stable")
    return n, np.asarray(ids, dtype=np.int64)[order], [texts[i] for i in order]


def _embed_in_batches(embedder: Embedder, texts: list[str], ids: np.ndarray, batch: int,
                      done: Callable[[int], None]) -> np.ndarray:
    parts = []
    for start in range(0, len(texts), batch):
        parts.append(embedder.embed(texts[start:start + batch], ids[start:start + batch]))
        done(min(len(texts), start + batch))
    return np.concatenate(parts)


def _batches(req: ClusterRequest) -> Iterator[tuple[np.ndarray, list[str]]]:
    batch: list[str] = []
    first = 0
    for text in read_documents(req.sources, req.read, ReadStats()):
        batch.append(text)
        if len(batch) == req.batch_docs:
            yield np.arange(first, first + len(batch)), batch
            first, batch = first + len(batch), []
    if batch:
        yield np.arange(first, first + len(batch)), batch


def _assign_and_spill(req: ClusterRequest, embedder: Embedder, model: ClusterModel, sample_ids: np.ndarray,
                      sample_x: np.ndarray, n_docs: int, staging: Path, progress: Progress
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Pass 2: every document's cluster and distance; its text appended to the cluster's
    scratch file (JSON lines, so documents keep their newlines)."""
    labels = np.empty(n_docs, dtype=np.int64)
    distances = np.empty(n_docs, dtype=np.float32)
    spill_dir = staging / "spill"
    spill_dir.mkdir()
    spills = [open(spill_dir / f"{c}.jsonl", "w", encoding="utf-8") for c in range(model.n_clusters)]
    try:
        seen = 0
        for ids, texts in _batches(req):
            if ids[-1] >= n_docs:
                raise MixerError("the sources changed while they were being clustered; run it again")
            x = np.empty((len(ids), sample_x.shape[1]), dtype=np.float32)
            at = np.minimum(np.searchsorted(sample_ids, ids), len(sample_ids) - 1)
            in_sample = sample_ids[at] == ids
            x[in_sample] = sample_x[at[in_sample]]
            if not in_sample.all():
                rest = ~in_sample
                x[rest] = embedder.embed([t for t, r in zip(texts, rest) if r], ids[rest])
            labels[ids], distances[ids] = model.assign(x)
            for text, label in zip(texts, labels[ids]):
                spills[label].write(json.dumps(text) + "\n")
            seen = int(ids[-1]) + 1
            progress("assigning", seen, n_docs)
        if seen != n_docs:
            raise MixerError("the sources changed while they were being clustered; run it again")
    finally:
        for f in spills:
            f.close()
    return labels, distances


def _spilled(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def _write_domains(req: ClusterRequest, names: list[str], rank: np.ndarray, staging: Path, tokenizer: Tokenizer,
                   bad_lines: int, progress: Progress) -> list[DomainMeta]:
    metas: list[DomainMeta] = [None] * len(names)  # type: ignore[list-item]
    for cluster, r in enumerate(rank):
        meta = write_domain(staging / domain_folder(names[r]), names[r], _spilled(staging / "spill" / f"{cluster}.jsonl"),
                            tokenizer, req.ingest, None)
        meta.sources = [str(Path(p).resolve()) for p in req.sources]
        meta.bad_lines = bad_lines
        meta.write(staging / domain_folder(names[r]))
        metas[r] = meta
        progress("writing domains", sum(m is not None for m in metas), len(names))
    shutil.rmtree(staging / "spill")
    return metas


def _record(req: ClusterRequest, embedder: Embedder, model: ClusterModel, rank: np.ndarray,
            metas: list[DomainMeta], n_docs: int, sample_texts: list[str], sample_labels: np.ndarray
            ) -> ClusteringRecord:
    norms = np.linalg.norm(model.final_centroids(), axis=1)
    parents = model.parents()
    terms = top_terms(sample_texts, sample_labels, model.n_clusters)
    clusters = []
    for cluster, r in sorted(enumerate(rank), key=lambda p: p[1]):
        meta = metas[r]
        clusters.append(ClusterRecord(
            cluster=int(r), domain=meta.name, n_docs=meta.n_docs + meta.n_val_docs,
            n_tokens=meta.n_tokens + meta.n_val_tokens, centroid_norm=float(norms[cluster]),
            top_terms=terms[r], parents=parents[cluster]))
    config = {"clusters": req.cluster.clusters, "initial_clusters": req.cluster.requested_initial_clusters,
              "initial_clusters_used": model.n_initial, "kept_initial_clusters": len(model.centroids),
              "min_cluster_docs": req.cluster.min_cluster_docs, "sample": req.cluster.sample,
              "seed": req.cluster.seed, "val_fraction": req.ingest.val_fraction}
    return ClusteringRecord(name=req.name, embedder=embedder.spec, n_docs=n_docs, n_sample=len(sample_labels),
                            config=config, sources=[str(Path(p).resolve()) for p in req.sources], clusters=clusters)


def _write_artefacts(folder: Path, req: ClusterRequest, names: list[str], doc_clusters: np.ndarray,
                     distances: np.ndarray, model: ClusterModel, rank: np.ndarray, sample_ids: np.ndarray,
                     sample_x: np.ndarray, sample_labels: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.decomposition import PCA

    folder.mkdir()
    domain_of = pa.DictionaryArray.from_arrays(pa.array(doc_clusters, pa.int32()), pa.array(names))
    pq.write_table(pa.table({"doc": np.arange(len(doc_clusters)), "cluster": doc_clusters.astype(np.int32),
                             "domain": domain_of, "distance": distances}), folder / ASSIGNMENT)
    pick = np.unique(np.linspace(0, len(sample_ids) - 1, min(req.projection_points, len(sample_ids))).astype(int))
    xy = PCA(n_components=2, random_state=req.cluster.seed).fit_transform(sample_x[pick])
    pq.write_table(pa.table({"doc": sample_ids[pick], "x": xy[:, 0].astype(np.float32),
                             "y": xy[:, 1].astype(np.float32), "cluster": sample_labels[pick].astype(np.int32)}),
                   folder / PROJECTION)
    final = model.final_centroids()
    order = np.argsort(rank)
    np.save(folder / CENTROIDS, final[order])


def _publish_artefacts(folder: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        shutil.rmtree(final)
    folder.rename(final)
