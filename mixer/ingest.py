"""Ingest: documents -> a tokenised domain, in bounded memory, all or nothing.

Documents stream in chunks through the tokenizer into a scratch file inside a temporary
directory next to the final one. At the end the held-out validation documents are chosen
(deterministically, spread evenly over the corpus), the train and validation token files are
written, and the directory is renamed into place in one step. An interrupted ingest leaves
only the temporary directory, which the next ingest of any domain removes.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixer.domain import (DATA_FILES, TRAIN_OFFSETS, TRAIN_TOKENS, VAL_OFFSETS, VAL_TOKENS, DomainMeta,
                          files_fingerprint, offsets_hash)
from mixer.errors import MixerError
from mixer.processes import HOST, pid_alive
from mixer.names import domain_folder
from mixer.tokenizers import Tokenizer, token_dtype

_SCRATCH = "all.bin"
_TMP_PREFIX = ".tmp-"


@dataclass
class IngestConfig:
    """How a domain is cut and written.

    val_fraction:    share of documents held out for validation (default 1%)
    min_val_docs:    at least this many held out when the domain has 4x as many documents;
                     a tiny domain holds out max(1, val_fraction x docs), the last document first
    min_val_tokens:  and at least this many tokens (what a proxy measures at the end of a
                     run), more documents held out until they hold it...
    max_val_share:   ...but never more than this share of the domain's tokens: a small domain
                     holds out a share of itself (`DomainMeta.measurable` says whether it is
                     enough to measure)
    eval_only:       every document is held out: a set measured by every run, never trained on
    chunk_bytes:     text tokenised per batch; bounds memory whatever the corpus size
    replace:         overwrite an existing domain of the same name
    """

    val_fraction: float = 0.01
    min_val_docs: int = 64
    min_val_tokens: int = 32_768
    max_val_share: float = 0.1
    eval_only: bool = False
    chunk_bytes: int = 16 << 20
    replace: bool = False

    def __post_init__(self):
        if not 0 < self.val_fraction < 0.5:
            raise MixerError(f"--val-fraction must be in (0, 0.5), got {self.val_fraction}")
        if not 0 < self.max_val_share < 0.5 or self.min_val_tokens < 0:
            raise MixerError("ingest needs 0 < max_val_share < 0.5 and min_val_tokens >= 0")


EVAL_SET_MIN_TOKENS = 257   # one evaluation window at the default seq_len (256 + the shifted target)


def validation_indices(lengths: np.ndarray, cfg: IngestConfig) -> np.ndarray:
    """Which documents are held out (`lengths`: tokens per document [n]): the last one of
    each of n_val equal strata, n_val by the document rule, raised until the held-out
    documents hold `min_val_tokens` or `max_val_share` of the tokens (whichever is less)."""
    n_docs = len(lengths)
    if n_docs < 2:
        raise MixerError(f"a domain needs at least 2 documents (one is held out for validation), got {n_docs}")
    n_val = math.ceil(cfg.val_fraction * n_docs)
    if n_docs >= 4 * cfg.min_val_docs:
        n_val = max(n_val, cfg.min_val_docs)
    n_val = max(1, min(n_val, n_docs - 1))
    want = min(cfg.min_val_tokens, cfg.max_val_share * float(lengths.sum()))
    while n_val < n_docs - 1 and lengths[_strata_ends(n_docs, n_val)].sum() < want:
        if lengths[_strata_ends(n_docs, n_val + 1)].sum() > cfg.max_val_share * float(lengths.sum()):
            break   # one more document would hold out more than the domain's share
        n_val += 1
    return _strata_ends(n_docs, n_val)


def _strata_ends(n_docs: int, n_val: int) -> np.ndarray:
    return (np.arange(1, n_val + 1, dtype=np.int64) * n_docs) // n_val - 1


def _chunks(docs: Iterable[str], chunk_bytes: int) -> Iterator[list[str]]:
    chunk, size = [], 0
    for doc in docs:
        chunk.append(doc)
        size += len(doc)
        if size >= chunk_bytes:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def clean_stale_temporaries(domains_dir: Path, older_than_s: float = 3600.0) -> None:
    """Remove temporary folders left by ingests that died (kill -9): a folder named for a
    process of this machine that no longer runs, or one of unknown owner that is older
    than an hour. Another `corpus add` running now keeps its folder."""
    if not domains_dir.is_dir():
        return
    for p in domains_dir.glob(_TMP_PREFIX + "*"):
        owner = _temporary_owner(p.name)
        stale = (not pid_alive(owner[1]) if owner and owner[0] == HOST
                 else owner is None and time.time() - p.stat().st_mtime > older_than_s)
        if stale:
            shutil.rmtree(p, ignore_errors=True)


def _temporary_folder(domains_dir: Path, label: str) -> Path:
    """A temporary folder named for its owner (host and pid) and `label`."""
    return domains_dir / f"{_TMP_PREFIX}{os.getpid()}@{HOST}@{uuid.uuid4().hex[:8]}-{label}"


def _temporary_owner(name: str) -> tuple[str, int] | None:
    """(host, pid) from a temporary folder's name; None when it does not say."""
    parts = name[len(_TMP_PREFIX):].split("@", 2)
    return (parts[1], int(parts[0])) if len(parts) == 3 and parts[0].isdigit() else None


def ingest_domain(domains_dir: Path, name: str, documents: Iterable[str], tokenizer: Tokenizer,
                  cfg: IngestConfig, sources: list[str] | None = None,
                  progress: Callable[[int], None] | None = None, bad_lines: Callable[[], int] = lambda: 0
                  ) -> DomainMeta:
    """Tokenise `documents` into `domains_dir/name`, atomically."""
    folder = domain_folder(name)
    if (domains_dir / folder).exists() and not cfg.replace:
        raise MixerError(f"domain '{name}' already exists; use --replace to overwrite it")
    with staging_folder(domains_dir, folder) as staging:
        meta = write_domain(staging / folder, name, documents, tokenizer, cfg, progress)
        meta.sources = list(sources or [])
        meta.bad_lines = bad_lines()
        meta.write(staging / folder)
        publish_domains(staging, [name], domains_dir)
    return meta


@contextmanager
def staging_folder(domains_dir: Path, label: str) -> Iterator[Path]:
    """A temporary folder beside the domains, removed on exit whatever happens (what was
    published from it has moved out)."""
    domains_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(domains_dir)
    staging = _temporary_folder(domains_dir, label)
    staging.mkdir()
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish_domains(staging: Path, names: list[str], domains_dir: Path, retire: Iterable[str] = ()) -> None:
    """Move the staged domains `staging/<folder>` into `domains_dir` together, replacing
    domains of the same names, and remove the domains in `retire`: either all of it
    happens or, when a move fails, what moved goes back and nothing changes."""
    aside = staging / ".replaced"
    aside.mkdir()
    moved_aside: list[str] = []
    published: list[str] = []
    try:
        for folder in map(domain_folder, [*names, *(r for r in retire if r not in names)]):
            if (domains_dir / folder).exists():
                os.replace(domains_dir / folder, aside / folder)
                moved_aside.append(folder)
        for folder in map(domain_folder, names):
            os.replace(staging / folder, domains_dir / folder)
            published.append(folder)
    except BaseException:
        for folder in published:
            os.replace(domains_dir / folder, staging / folder)
        for folder in moved_aside:
            os.replace(aside / folder, domains_dir / folder)
        raise


def write_domain(tmp: Path, name: str, documents: Iterable[str], tokenizer: Tokenizer,
                  cfg: IngestConfig, progress: Callable[[int], None] | None) -> DomainMeta:
    """Tokenise `documents` into the new folder `tmp` (its meta is returned, not written)."""
    tmp.mkdir()
    dtype = token_dtype(tokenizer.vocab_size)
    lengths: list[np.ndarray] = []
    n_bytes = 0
    eos = np.array([tokenizer.eos_id], dtype=dtype)
    with open(tmp / _SCRATCH, "wb") as scratch:
        for chunk in _chunks(documents, cfg.chunk_bytes):
            encoded = tokenizer.encode_batch(chunk)
            pieces = []
            for ids in encoded:
                pieces.append(ids.astype(dtype, copy=False))
                pieces.append(eos)
            np.concatenate(pieces).tofile(scratch)
            lengths.append(np.array([len(ids) + 1 for ids in encoded], dtype=np.int64))
            chunk_bytes = sum(len(d.encode("utf-8", errors="replace")) for d in chunk)
            n_bytes += chunk_bytes
            if progress:
                progress(chunk_bytes)
    if not lengths:
        raise MixerError(f"no documents found for domain '{name}' (all sources empty)")
    doc_lengths = np.concatenate(lengths)
    starts = np.concatenate([[0], np.cumsum(doc_lengths)])
    is_val = np.zeros(len(doc_lengths), dtype=bool)
    if cfg.eval_only:
        is_val[:] = True
        if doc_lengths.sum() < EVAL_SET_MIN_TOKENS:
            raise MixerError(f"eval-only set '{name}' has {int(doc_lengths.sum())} tokens, fewer than one "
                             f"evaluation window ({EVAL_SET_MIN_TOKENS}); give it more text")
    else:
        is_val[validation_indices(doc_lengths, cfg)] = True

    all_tokens = np.memmap(tmp / _SCRATCH, dtype=dtype, mode="r")
    digest = hashlib.sha256()
    train_lengths = _copy_documents(all_tokens, starts, ~is_val, tmp / TRAIN_TOKENS, digest)
    val_lengths = _copy_documents(all_tokens, starts, is_val, tmp / VAL_TOKENS, digest)
    del all_tokens
    (tmp / _SCRATCH).unlink()
    np.save(tmp / TRAIN_OFFSETS, np.concatenate([[0], np.cumsum(train_lengths)]).astype(np.int64))
    np.save(tmp / VAL_OFFSETS, np.concatenate([[0], np.cumsum(val_lengths)]).astype(np.int64))
    return DomainMeta(
        name=name, tokenizer=tokenizer.spec(), vocab_size=tokenizer.vocab_size, eos_id=tokenizer.eos_id,
        dtype=dtype.name, n_docs=int(len(train_lengths)), n_tokens=int(train_lengths.sum()),
        n_val_docs=int(len(val_lengths)), n_val_tokens=int(val_lengths.sum()), n_bytes=n_bytes,
        content_hash=digest.hexdigest(), fingerprint=files_fingerprint(tmp, DATA_FILES),
        hashed_files=list(DATA_FILES), offsets_hash=offsets_hash(tmp), eval_only=cfg.eval_only)


def _copy_documents(tokens: np.ndarray, starts: np.ndarray, keep: np.ndarray, out: Path,
                    digest) -> np.ndarray:
    """Write the kept documents back to back, copying maximal contiguous runs."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], keep.astype(np.int8), [0]])))
    with open(out, "wb") as f:
        for first, stop in zip(edges[::2], edges[1::2]):
            block = np.ascontiguousarray(tokens[starts[first]:starts[stop]])
            digest.update(memoryview(block).cast("B"))
            block.tofile(f)
    return (starts[1:] - starts[:-1])[keep]
