"""mixer.clustering: the CLIMB pipeline (fit, prune, merge, assign), the embedders, and
`cluster_corpus` end to end on corpora the tests build (and on ../shared when present)."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from mixer.clustering import ClusterConfig, ClusterRequest, fit_clusters, make_embedder
from mixer.clustering.build import ASSIGNMENT, PROJECTION
from mixer.clustering.embedders import FileEmbedder, LsaEmbedder, ProxyEmbedder, ProxyEmbedderConfig
from search.domains import train_embedder_lm
from mixer.domain import Domain, list_domains
from mixer.errors import MixerError
from mixer.tokenizers import ByteTokenizer
from mixer.workspace import open_workspace
from search.domains import cluster_domains, cluster_table
from store import get_clustering
from tests.conftest import CORPUS, needs_corpus


def topic_words(topic: int) -> list[str]:
    """40 made-up words of one topic: 'vaaq', 'vabq', ... for topic 0."""
    return [f"{'vwxyz'[topic]}{chr(97 + i // 26)}{chr(97 + i % 26)}q" for i in range(40)]


def topic_documents(seed: int, n_docs: int, topic: int, n_topics: int = 3) -> list[str]:
    """Documents drawn from one topic's own words plus words every topic shares."""
    rng = random.Random(seed * 1000 + topic)
    own = topic_words(topic)
    shared = ["the", "and", "of", "a", "to", "in", ",", "."]
    return [" ".join(rng.choice(own if rng.random() < 0.6 else shared) for _ in range(rng.randint(30, 120)))
            for _ in range(n_docs)]


def mixed_corpus(path, sizes=(120, 60, 25), seed=0) -> tuple[list[str], np.ndarray]:
    """A shuffled JSONL of several topics with the labels hidden; returns (docs, labels)."""
    docs = [(d, t) for t, n in enumerate(sizes) for d in topic_documents(seed, n, t)]
    random.Random(seed).shuffle(docs)
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d, _ in docs))
    return [d for d, _ in docs], np.array([t for _, t in docs])


def blobs(sizes, dim=8, spread=0.05, seed=0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:len(sizes)] * 3
    x = np.concatenate([c + spread * rng.standard_normal((n, dim)) for c, n in zip(centres, sizes)])
    return x.astype(np.float32), np.repeat(np.arange(len(sizes)), sizes)


# ---------------------------------------------------------------- the clustering model


def test_fit_recovers_unequal_blobs_through_many_initial_clusters():
    x, labels = blobs([400, 150, 40])
    model = fit_clusters(x, ClusterConfig(clusters=3, initial_clusters=24, min_cluster_docs=2))
    assigned, distance = model.assign(x)
    assert adjusted_rand_score(labels, assigned) == 1.0
    assert model.n_initial == 24 and model.n_clusters == 3
    assert sorted(p for parents in model.parents() for p in parents) == sorted(model.kept_ids.tolist())
    assert (distance >= 0).all()


def test_small_initial_clusters_are_pruned_and_their_documents_go_to_the_nearest_kept_centroid():
    x, _ = blobs([300, 300], seed=1)
    outlier = np.full((1, x.shape[1]), 0.0, dtype=np.float32)
    outlier[0, 0] = 3.5                          # nearest the first blob, far from its points
    model = fit_clusters(np.vstack([x, outlier]), ClusterConfig(clusters=2, initial_clusters=20, min_cluster_docs=5))
    assert len(model.kept_ids) < model.n_initial or model.n_initial == 20
    label, _ = model.assign(outlier)
    assert label[0] == model.assign(x[:1])[0][0]


def test_initial_clusters_shrink_to_what_a_small_sample_fills():
    cfg = ClusterConfig(clusters=4, initial_clusters=256, min_cluster_docs=8)
    assert cfg.effective_initial_clusters(100_000) == 256
    assert cfg.effective_initial_clusters(320) == 10      # 32 documents per initial cluster
    assert cfg.effective_initial_clusters(40) == 4        # never fewer than the final clusters
    assert ClusterConfig(clusters=5).effective_initial_clusters(100_000) == 256  # by default 256
    assert ClusterConfig(clusters=32).effective_initial_clusters(100_000) == 512  # or 16 per final cluster


@pytest.mark.parametrize("kwargs, needle", [
    ({"clusters": 1}, "--clusters must be at least 2"),
    ({"clusters": 20, "initial_clusters": 10}, "--clusters 20 is more than --initial-clusters 10"),
    ({"min_cluster_docs": 0}, "--min-cluster-docs"),
    ({"clusters": 8, "sample": 10}, "--sample 10 is too small"),
])
def test_cluster_config_refuses_bad_values(kwargs, needle):
    with pytest.raises(MixerError, match=needle):
        ClusterConfig(**kwargs)


# ---------------------------------------------------------------- embedders


@pytest.mark.slow  # clusters a corpus end to end
def test_lsa_rows_are_unit_vectors_and_separate_topics():
    docs = [d for t in range(3) for d in topic_documents(3, 40, t)]
    embedder = LsaEmbedder()
    embedder.fit(docs, len(docs))
    x = embedder.embed(docs, np.arange(len(docs)))
    assert x.dtype == np.float32 and np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    same = x[:40] @ x[:40].T
    other = x[:40] @ x[40:80].T
    assert same.mean() > other.mean() + 0.3


@pytest.mark.slow  # clusters a corpus end to end
def test_proxy_embedder_trains_on_the_sample_and_is_deterministic():
    docs = [d for t in range(2) for d in topic_documents(4, 30, t)]
    vectors = []
    for _ in range(2):
        embedder = ProxyEmbedder(ByteTokenizer(), train_embedder_lm, ProxyEmbedderConfig(train_tokens=16 * 256 * 4,
                                                                                         doc_tokens=64), seed=3)
        embedder.fit(docs, len(docs))
        vectors.append(embedder.embed(docs, np.arange(len(docs))))
    assert vectors[0].shape == (60, 64)
    assert np.allclose(np.linalg.norm(vectors[0], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-5)


@pytest.mark.parametrize("form", ["npy", "parquet-list", "parquet-columns"])
def test_file_embeddings_are_read_by_document_position(tmp_path, form):
    rows = np.arange(12, dtype=np.float32).reshape(4, 3) + 1
    path = tmp_path / ("e.npy" if form == "npy" else "e.parquet")
    if form == "npy":
        np.save(path, rows)
    elif form == "parquet-list":
        pd.DataFrame({"embedding": list(rows)}).to_parquet(path)
    else:
        pd.DataFrame(rows, columns=["a", "b", "c"]).to_parquet(path)
    embedder = FileEmbedder(path)
    embedder.fit([], 4)
    got = embedder.embed(["x", "y"], np.array([2, 0]))
    expected = rows[[2, 0]] / np.linalg.norm(rows[[2, 0]], axis=1, keepdims=True)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_file_embeddings_that_do_not_fit_are_refused(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros(5, dtype=np.float32))
    with pytest.raises(MixerError, match="must be a matrix"):
        FileEmbedder(tmp_path / "flat.npy")
    pd.DataFrame({"e": [[1.0, 2.0], [1.0, 2.0, 3.0]]}).to_parquet(tmp_path / "ragged.parquet")
    with pytest.raises(MixerError, match="row 1 has 3 values, row 0 has 2"):
        FileEmbedder(tmp_path / "ragged.parquet")
    np.save(tmp_path / "short.npy", np.ones((3, 4), dtype=np.float32))
    with pytest.raises(MixerError, match="have 3 rows but the sources have 5 documents"):
        FileEmbedder(tmp_path / "short.npy").fit([], 5)


@pytest.mark.parametrize("spec, needle", [
    ("word2vec", "unknown --embedder 'word2vec'"),
    ("file:/no/such.npy", "does not exist"),
    ("file:", "needs a path after 'file:'"),
    ("sentence-transformers:/no/such/model", "does not exist"),
])
def test_make_embedder_refuses_unknown_kinds_and_missing_paths(spec, needle):
    with pytest.raises(MixerError, match=needle):
        make_embedder(spec, ByteTokenizer())


@pytest.mark.slow  # clusters a corpus end to end
def test_sentence_transformers_loads_a_local_model_the_test_builds(tmp_path):
    pytest.importorskip("sentence_transformers", reason="the optional extra mixer[embed] is not installed")
    from sentence_transformers import SentenceTransformer, models
    from tokenizers import Tokenizer, models as tok_models, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [w for t in range(2) for w in topic_words(t)]
    backend = Tokenizer(tok_models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    bert = BertModel(BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=32, max_position_embeddings=128))
    bert_dir = tmp_path / "bert"
    bert.save_pretrained(bert_dir)
    tokenizer.save_pretrained(bert_dir)
    transformer = models.Transformer(str(bert_dir), max_seq_length=64)
    model_dir = tmp_path / "st-model"
    SentenceTransformer(modules=[transformer, models.Pooling(16, pooling_mode="mean")]).save(str(model_dir))

    embedder = make_embedder(f"sentence-transformers:{model_dir}", ByteTokenizer())
    docs = topic_documents(5, 6, 0) + topic_documents(5, 6, 1)
    embedder.fit(docs, len(docs))
    x = embedder.embed(docs, np.arange(len(docs)))
    assert x.shape == (12, 16) and np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    with pytest.raises(MixerError, match="cannot load the sentence-transformers model"):
        make_embedder(f"sentence-transformers:{tmp_path}", ByteTokenizer()).fit(docs, len(docs))


# ---------------------------------------------------------------- cluster_corpus


def _request(name, sources, **cluster) -> ClusterRequest:
    cfg = {"clusters": 3, "initial_clusters": 24, "min_cluster_docs": 2, **cluster}
    return ClusterRequest(name=name, sources=sources, cluster=ClusterConfig(**cfg))


@pytest.mark.slow  # clusters a corpus end to end
def test_cluster_a_mixed_corpus_into_domains_that_hold_exactly_its_documents(tmp_path):
    docs, labels = mixed_corpus(tmp_path / "mixed.jsonl")
    ws = open_workspace(tmp_path / "ws")
    result = cluster_domains(ws, _request("mix", [tmp_path / "mixed.jsonl"]))

    names = [c.domain for c in result.record.clusters]
    assert names == ["mix/00", "mix/01", "mix/02"]
    sizes = [c.n_docs for c in result.record.clusters]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == len(docs) == result.record.n_docs
    assignment = pd.read_parquet(ws.clusterings_dir / "mix" / ASSIGNMENT)
    assert assignment.doc.tolist() == list(range(len(docs)))
    assert adjusted_rand_score(labels, assignment.cluster) == 1.0
    for cluster in result.record.clusters:
        domain = Domain.open(ws.domain_dir(cluster.domain))
        tokenizer = ByteTokenizer()
        held = [tokenizer.decode(d) for d in domain.val_documents()]
        trained = [tokenizer.decode(domain.tokens[a:b - 1])
                   for a, b in zip(domain.offsets[:-1], domain.offsets[1:])]
        mine = [d for d, c in zip(docs, assignment.cluster) if c == cluster.cluster]
        assert sorted(held + trained) == sorted(mine)
        topic = labels[assignment.cluster == cluster.cluster][0]
        assert cluster.top_terms and set(cluster.top_terms) <= set(topic_words(topic))
    stored = get_clustering(ws.db_path, "mix")
    assert [c.domain for c in stored.clusters] == names and stored.config["initial_clusters_used"] == 24
    assert len(pd.read_parquet(ws.clusterings_dir / "mix" / PROJECTION)) == len(docs)
    table = cluster_table(ws, "mix")
    assert table.docs.sum() == len(docs) and table.present.all()


@pytest.mark.slow  # clusters a corpus end to end
def test_a_sample_smaller_than_the_corpus_still_assigns_every_document(tmp_path):
    docs, labels = mixed_corpus(tmp_path / "mixed.jsonl", sizes=(150, 100, 60))
    ws = open_workspace(tmp_path / "ws")
    result = cluster_domains(ws, _request("mix", [tmp_path / "mixed.jsonl"], sample=90))
    assert result.record.n_sample == 90 and result.record.n_docs == len(docs)
    assignment = pd.read_parquet(ws.clusterings_dir / "mix" / ASSIGNMENT)
    assert len(assignment) == len(docs) and adjusted_rand_score(labels, assignment.cluster) > 0.9


def test_precomputed_embeddings_decide_the_clusters(tmp_path):
    docs, labels = mixed_corpus(tmp_path / "mixed.jsonl")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "e.npy", (np.eye(4)[labels] + 0.01 * rng.standard_normal((len(docs), 4))).astype(np.float32))
    ws = open_workspace(tmp_path / "ws")
    request = _request("mix", [tmp_path / "mixed.jsonl"])
    request.embedder = f"file:{tmp_path / 'e.npy'}"
    result = cluster_domains(ws, request)
    assert result.record.embedder.startswith("file:")
    assignment = pd.read_parquet(ws.clusterings_dir / "mix" / ASSIGNMENT)
    assert adjusted_rand_score(labels, assignment.cluster) == 1.0


@pytest.mark.slow  # clusters a corpus end to end
def test_replace_redoes_a_clustering_and_retires_its_old_domains(tmp_path):
    mixed_corpus(tmp_path / "mixed.jsonl", sizes=(80, 60, 40, 30))
    ws = open_workspace(tmp_path / "ws")
    cluster_domains(ws, _request("mix", [tmp_path / "mixed.jsonl"], clusters=4))
    with pytest.raises(MixerError, match="clustering 'mix' already exists; use --replace"):
        cluster_domains(ws, _request("mix", [tmp_path / "mixed.jsonl"], clusters=2))
    request = _request("mix", [tmp_path / "mixed.jsonl"], clusters=2)
    request.ingest.replace = True
    result = cluster_domains(ws, request)
    assert result.retired == ["mix/02", "mix/03"]
    assert [m.name for m in list_domains(ws.domains_dir)] == ["mix/00", "mix/01"]
    from store import run_sql
    assert run_sql(ws.db_path, "select name from domains order by 1").name.tolist() == ["mix/00", "mix/01"]
    assert run_sql(ws.db_path, "select count(*) as n from clusters").n[0] == 2


def test_a_failure_leaves_the_workspace_as_it_was(tmp_path):
    docs, _ = mixed_corpus(tmp_path / "mixed.jsonl")
    np.save(tmp_path / "short.npy", np.ones((len(docs) - 1, 4), dtype=np.float32))
    ws = open_workspace(tmp_path / "ws")
    request = _request("mix", [tmp_path / "mixed.jsonl"])
    request.embedder = f"file:{tmp_path / 'short.npy'}"
    with pytest.raises(MixerError, match="rows but the sources have"):
        cluster_domains(ws, request)
    assert list(ws.domains_dir.iterdir()) == []
    assert not ws.clusterings_dir.exists() or list(ws.clusterings_dir.iterdir()) == []
    assert get_clustering(ws.db_path, "mix") is None


def test_a_name_taken_by_a_plain_domain_is_never_overwritten(tmp_path):
    from mixer.corpus import AddRequest
    from search.domains import add_domain

    mixed_corpus(tmp_path / "mixed.jsonl")
    ws = open_workspace(tmp_path / "ws")
    add_domain(ws, AddRequest(name="mix/01", sources=[tmp_path / "mixed.jsonl"]))
    request = _request("mix", [tmp_path / "mixed.jsonl"])
    for replace in (False, True):
        request.ingest.replace = replace
        with pytest.raises(MixerError, match="domain 'mix/01' exists and is not part of clustering 'mix'"):
            cluster_domains(ws, request)
    assert [m.name for m in list_domains(ws.domains_dir)] == ["mix/01"]


@pytest.mark.slow  # clusters a corpus end to end
def test_redoing_a_clustering_that_a_search_mixed_needs_force(tmp_path):
    from store import RunRecord, SearchRecord, create_search, write_runs

    mixed_corpus(tmp_path / "mixed.jsonl")
    ws = open_workspace(tmp_path / "ws")
    cluster_domains(ws, _request("mix", [tmp_path / "mixed.jsonl"]))
    create_search(ws.db_path, SearchRecord(id="s-1", name="mine", backend="climb", evaluator="proxy"))
    write_runs(ws.db_path, [RunRecord(id="mine/0000", search_id="s-1", status="done",
                                      mixture={"mix/00": 0.5, "mix/01": 0.3, "mix/02": 0.2})])
    request = _request("mix", [tmp_path / "mixed.jsonl"], clusters=2)
    request.ingest.replace = True
    with pytest.raises(MixerError, match="domain 'mix/00' is mixed by search.*mine; use --force to redo clustering"):
        cluster_domains(ws, request)
    assert len(list_domains(ws.domains_dir)) == 3
    assert cluster_domains(ws, request, force=True).retired == ["mix/02"]


@needs_corpus
@pytest.mark.slow  # embeds and clusters the whole shared corpus
def test_the_shared_corpus_clusters_close_to_its_true_domains(tmp_path):
    rows = []
    for label, path in enumerate(sorted(CORPUS.glob("*.jsonl"))):
        with open(path) as f:
            rows += [(json.loads(line)["text"], label) for line, _ in zip(f, range(300))]
    random.Random(0).shuffle(rows)
    (tmp_path / "all.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t, _ in rows))
    ws = open_workspace(tmp_path / "ws")
    cluster_domains(ws, _request("web", [tmp_path / "all.jsonl"], clusters=5, initial_clusters=64,
                                 min_cluster_docs=4))
    assignment = pd.read_parquet(ws.clusterings_dir / "web" / ASSIGNMENT)
    assert adjusted_rand_score([label for _, label in rows], assignment.cluster) > 0.5
