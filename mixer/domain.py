"""A domain on disk and its reader.

Layout of `domains/<name>/`::

    tokens.bin        training tokens, documents back to back, each followed by EOS
    offsets.npy       int64 [n_docs + 1]: start of each training document in tokens.bin
    val.bin           held-out validation documents (never trained on), same format
    val_offsets.npy   int64 [n_val_docs + 1]
    meta.json         name, tokenizer, dtype, counts, hashes, sources

`Domain.open` checks sizes against meta.json and a sampled fingerprint of the token files
(cheap for any size); `verify_full` recomputes the full content hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mixer.errors import MixerError
from mixer.names import domain_folder

META = "meta.json"
TRAIN_TOKENS, TRAIN_OFFSETS = "tokens.bin", "offsets.npy"
VAL_TOKENS, VAL_OFFSETS = "val.bin", "val_offsets.npy"
DATA_FILES = (TRAIN_TOKENS, VAL_TOKENS, TRAIN_OFFSETS, VAL_OFFSETS)
MIN_MEASURED_TOKENS = 4_096   # a held-out split below this is noise (16 windows of 256 tokens)
_BLOCK = 1 << 16
_SAMPLED_BLOCKS = 64


@dataclass
class DomainMeta:
    name: str
    tokenizer: dict
    vocab_size: int
    eos_id: int
    dtype: str
    n_docs: int
    n_tokens: int
    n_val_docs: int
    n_val_tokens: int
    n_bytes: int
    content_hash: str
    fingerprint: str
    sources: list[str] = field(default_factory=list)
    bad_lines: int = 0
    format_version: int = 1
    # the files `fingerprint` covers (domains ingested before offsets were hashed: tokens only)
    hashed_files: list[str] = field(default_factory=lambda: [TRAIN_TOKENS, VAL_TOKENS])
    offsets_hash: str | None = None           # sha256 of both offsets files (verify_full)
    eval_only: bool = False                   # measured, never trained on: every document is held out

    @property
    def measurable(self) -> bool:
        """Whether its held-out split holds enough tokens for a loss worth comparing
        (`MIN_MEASURED_TOKENS`); a domain that does not is left out of `--target avg`."""
        return self.n_val_tokens >= MIN_MEASURED_TOKENS

    def write(self, directory: Path) -> None:
        (directory / META).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, directory: Path) -> "DomainMeta":
        path = directory / META
        if not path.exists():
            raise MixerError(f"{directory} is not a domain (no {META})")
        try:
            return cls(**json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as exc:
            raise MixerError(f"{path} is not a valid domain meta file: {exc}") from None


def file_fingerprint(path: Path) -> str:
    """sha256 of the size and 64 evenly spaced 64 KiB blocks (first and last included)."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        if size <= _BLOCK * _SAMPLED_BLOCKS:
            digest.update(f.read())
        else:
            for start in np.linspace(0, size - _BLOCK, _SAMPLED_BLOCKS).astype(np.int64):
                f.seek(int(start))
                digest.update(f.read(_BLOCK))
    return digest.hexdigest()[:32]


def files_fingerprint(directory: Path, names: tuple[str, ...] | list[str] = DATA_FILES) -> str:
    return hashlib.sha256("".join(file_fingerprint(directory / n) for n in names).encode()).hexdigest()[:32]


def offsets_hash(directory: Path) -> str:
    digest = hashlib.sha256()
    for name in (TRAIN_OFFSETS, VAL_OFFSETS):
        digest.update((directory / name).read_bytes())
    return digest.hexdigest()


def content_hash(directory: Path) -> str:
    digest = hashlib.sha256()
    for name in (TRAIN_TOKENS, VAL_TOKENS):
        with open(directory / name, "rb") as f:
            while chunk := f.read(1 << 24):
                digest.update(chunk)
    return digest.hexdigest()


class Domain:
    """A tokenised domain, memory-mapped read-only."""

    def __init__(self, path: Path, meta: DomainMeta, tokens: np.ndarray, offsets: np.ndarray,
                 val_tokens: np.ndarray, val_offsets: np.ndarray):
        self.path = path
        self.meta = meta
        self.tokens = tokens
        self.offsets = offsets
        self.val_tokens = val_tokens
        self.val_offsets = val_offsets

    @property
    def name(self) -> str:
        return self.meta.name

    @classmethod
    def open(cls, path: str | Path, verify: bool = True) -> "Domain":
        path = Path(path)
        meta = DomainMeta.read(path)
        dtype = np.dtype(meta.dtype)
        expected = {TRAIN_TOKENS: meta.n_tokens * dtype.itemsize, VAL_TOKENS: meta.n_val_tokens * dtype.itemsize}
        for name, size in expected.items():
            file = path / name
            if not file.exists():
                raise MixerError(f"domain '{meta.name}': {file} is missing")
            if file.stat().st_size != size:
                raise MixerError(f"domain '{meta.name}': {file} has {file.stat().st_size} bytes, "
                                 f"meta.json says {size}; re-ingest the domain")
        if verify and files_fingerprint(path, meta.hashed_files) != meta.fingerprint:
            raise MixerError(f"domain '{meta.name}': data files do not match the hash in meta.json "
                             "(modified or corrupted); re-ingest the domain")
        return cls(path, meta,
                   _memmap(path / TRAIN_TOKENS, dtype), np.load(path / TRAIN_OFFSETS, mmap_mode="r"),
                   _memmap(path / VAL_TOKENS, dtype), np.load(path / VAL_OFFSETS, mmap_mode="r"))

    def verify_full(self) -> None:
        if content_hash(self.path) != self.meta.content_hash or (
                self.meta.offsets_hash is not None and offsets_hash(self.path) != self.meta.offsets_hash):
            raise MixerError(f"domain '{self.name}': content hash mismatch; re-ingest the domain")

    def val_documents(self) -> list[np.ndarray]:
        return [self.val_tokens[a:b] for a, b in zip(self.val_offsets[:-1], self.val_offsets[1:])]


def _memmap(path: Path, dtype: np.dtype) -> np.ndarray:
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r")


def list_domains(domains_dir: Path) -> list[DomainMeta]:
    if not domains_dir.is_dir():
        return []
    return [DomainMeta.read(p) for p in sorted(domains_dir.iterdir())
            if p.is_dir() and not p.name.startswith(".") and (p / META).exists()]


def training_domains(domains_dir: Path) -> list[DomainMeta]:
    """The domains a mixture may train on (every one but the eval-only sets)."""
    return [m for m in list_domains(domains_dir) if not m.eval_only]


def eval_only_sets(domains_dir: Path) -> list[DomainMeta]:
    """The workspace's eval-only sets: measured by every proxy run, never trained on."""
    return [m for m in list_domains(domains_dir) if m.eval_only]


def refuse_eval_only(names: list[str], eval_sets: list[str], what: str) -> None:
    """One line when `what` (a search's domains, a mixture) names an eval-only set."""
    named = [n for n in names if n in set(eval_sets)]
    if named:
        raise MixerError(f"{', '.join(named)} {'is an eval-only set' if len(named) == 1 else 'are eval-only sets'}: "
                         f"measured, never trained on, so it cannot be in {what} (use it in --target)")


def open_domains(domains_dir: Path, names: list[str] | None = None, verify: bool = True) -> dict[str, Domain]:
    """Training domains by name (default: all of them); an eval-only set is refused."""
    metas = list_domains(domains_dir)
    available = {m.name for m in metas if not m.eval_only}
    if not available:
        raise MixerError(f"no domains in {domains_dir}; add one with `mixer corpus add`")
    names = sorted(available) if names is None else list(names)
    refuse_eval_only(names, [m.name for m in metas if m.eval_only], "a training mixture")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise MixerError(f"unknown domain(s): {', '.join(unknown)} (known: {', '.join(sorted(available))})")
    return {n: Domain.open(domains_dir / domain_folder(n), verify=verify) for n in names}
