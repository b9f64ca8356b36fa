"""Small domains the project builds itself (no ../shared needed)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mixer.domain import open_domains
from mixer.ingest import IngestConfig, ingest_domain
from mixer.tokenizers import ByteTokenizer


def synthetic_documents(seed: int, n_docs: int, alphabet: str) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(20, 400))) for _ in range(n_docs)]


def write_jsonl(path: Path, docs: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    return path


@pytest.fixture(scope="session")
def small_domains(tmp_path_factory):
    """Three byte-level domains of different sizes: name -> Domain."""
    root = tmp_path_factory.mktemp("domains")
    for i, (name, n, alphabet) in enumerate([("alpha", 300, "abc "), ("beta", 120, "xyz\n"), ("gamma", 40, "0123456789")]):
        ingest_domain(root, name, synthetic_documents(i, n, alphabet), ByteTokenizer(), IngestConfig(min_val_docs=4))
    return open_domains(root)
