"""Words that tell a cluster apart, for people reading the clusters table."""

from __future__ import annotations

import numpy as np


def top_terms(texts: list[str], labels: np.ndarray, n_clusters: int, n_terms: int = 8,
              max_docs: int = 20_000) -> list[list[str]]:
    """Per cluster, the words whose mean TF-IDF in the cluster most exceeds their mean
    outside it (a class-based TF-IDF), from at most `max_docs` of the sample."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    step = max(1, len(texts) // max_docs)
    texts, labels = texts[::step], np.asarray(labels)[::step]
    try:
        vectors = TfidfVectorizer(stop_words="english", max_features=50_000, sublinear_tf=True,
                                  token_pattern=r"(?u)\b[^\W\d_]{3,}\b").fit(texts)
    except ValueError:  # no words at all (digits, code symbols)
        return [[] for _ in range(n_clusters)]
    matrix = vectors.transform(texts)
    vocabulary = vectors.get_feature_names_out()
    total = np.asarray(matrix.sum(axis=0)).ravel()
    out = []
    for c in range(n_clusters):
        inside = labels == c
        if not inside.any():
            out.append([])
            continue
        mean_in = np.asarray(matrix[inside].sum(axis=0)).ravel() / inside.sum()
        n_out = max(1, len(labels) - inside.sum())
        mean_out = (total - mean_in * inside.sum()) / n_out
        score = mean_in - mean_out
        best = np.argsort(-score)[:n_terms]
        out.append([str(vocabulary[i]) for i in best if score[i] > 0])
    return out
