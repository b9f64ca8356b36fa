"""`mixer corpus add|list|remove` behind the CLI: one function per command."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mixer.builtin import builtin_documents
from mixer.domain import META, Domain, DomainMeta, list_domains
from mixer.errors import MixerError
from mixer.ingest import IngestConfig, ingest_domain
from mixer.sources import ReadOptions, ReadStats, read_documents
from mixer.tokenizers import Tokenizer, load_tokenizer
from mixer.workspace import Workspace


@dataclass
class AddRequest:
    name: str
    sources: list[Path] = field(default_factory=list)
    builtin: str | None = None
    builtin_max_bytes: int | None = None
    tokenizer: Path | None = None
    read: ReadOptions = field(default_factory=ReadOptions)
    ingest: IngestConfig = field(default_factory=IngestConfig)


def workspace_tokenizer(ws: Workspace, requested: Path | None, replacing: str | None = None) -> Tokenizer:
    """The tokenizer for a new domain: all domains of a workspace share one."""
    tokenizer = load_tokenizer(requested)
    for meta in list_domains(ws.domains_dir):
        if meta.name != replacing and meta.tokenizer.get("hash") != tokenizer.spec()["hash"]:
            raise MixerError(f"domain '{meta.name}' uses tokenizer {meta.tokenizer.get('kind')} "
                             f"({meta.tokenizer.get('path', 'built in')}); all domains of a workspace "
                             "must share one tokenizer")
    return tokenizer


def source_bytes(sources: list[Path]) -> int:
    total = 0
    for s in sources:
        if s.is_dir():
            total += sum(p.stat().st_size for p in s.rglob("*") if p.is_file())
        elif s.exists():
            total += s.stat().st_size
    return total


def add_corpus(ws: Workspace, req: AddRequest, progress: Callable[[int], None] | None = None) -> DomainMeta:
    if bool(req.sources) == bool(req.builtin):
        raise MixerError("give either SOURCE files/directories or --builtin NAME (exactly one)")
    tokenizer = workspace_tokenizer(ws, req.tokenizer, replacing=req.name if req.ingest.replace else None)
    stats = ReadStats()
    if req.builtin:
        docs = (text for _, text in builtin_documents(req.builtin, req.builtin_max_bytes))
        labels = [f"builtin:{req.builtin}"]
    else:
        docs = read_documents(req.sources, req.read, stats)
        labels = [str(p) for p in req.sources]
    return ingest_domain(ws.domains_dir, req.name, docs, tokenizer, req.ingest, sources=labels,
                         progress=progress, bad_lines=lambda: stats.bad_lines)


def _existing_domain_dir(ws: Workspace, name: str) -> Path:
    path = ws.domain_dir(name)
    if not (path / META).is_file() or path.is_symlink():
        raise MixerError(f"no domain named '{name}'")
    return path


def remove_corpus(ws: Workspace, name: str) -> None:
    shutil.rmtree(_existing_domain_dir(ws, name))


def describe_domain(ws: Workspace, name: str, verify: bool = False) -> dict:
    """A domain's metadata; `verify` recomputes its full content hash first."""
    domain = Domain.open(_existing_domain_dir(ws, name))
    if verify:
        domain.verify_full()
    return {**vars(domain.meta), "path": str(domain.path),
            "verified": "full" if verify else "sizes and sampled hash"}


def domain_table(ws: Workspace) -> pd.DataFrame:
    """One row per domain: what it is for (train, or eval-only), documents, tokens,
    held-out split, size, tokenizer."""
    columns = ["name", "use", "docs", "tokens", "val_docs", "val_tokens", "MB", "tokenizer"]
    rows = [{"name": m.name, "use": use_of(m), "docs": m.n_docs, "tokens": m.n_tokens,
             "val_docs": m.n_val_docs, "val_tokens": m.n_val_tokens, "MB": round(m.n_bytes / 1e6, 2),
             "tokenizer": m.tokenizer.get("kind")} for m in list_domains(ws.domains_dir)]
    return pd.DataFrame(rows, columns=columns)


def use_of(meta: DomainMeta) -> str:
    """`eval-only`, `train`, or `train (not in avg)` for a domain whose held-out split is too
    small to measure."""
    return "eval-only" if meta.eval_only else "train" if meta.measurable else "train (not in avg)"


def held_out_note(meta: DomainMeta, min_val_tokens: int) -> str | None:
    """What a user should know about a new domain's held-out split, or None."""
    if meta.eval_only:
        return None
    if not meta.measurable:
        return (f"domain '{meta.name}' holds out only {meta.n_val_tokens:,} tokens, too few to measure: "
                "`--target avg` leaves it out (add more text, or target it by name knowing it is noisy)")
    if meta.n_val_tokens < min_val_tokens:
        return (f"domain '{meta.name}' holds out {meta.n_val_tokens:,} tokens (a share of a small domain, "
                f"fewer than {min_val_tokens:,}): its held-out loss is noisier than the others'")
    return None
