"""`mixer corpus add|list|remove` behind the CLI: one function per command."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mixer.builtin import builtin_documents
from mixer.domain import DomainMeta, list_domains
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


def remove_corpus(ws: Workspace, name: str) -> None:
    path = ws.domain_dir(name)
    if not (path / "meta.json").exists():
        raise MixerError(f"no domain named '{name}'")
    shutil.rmtree(path)
