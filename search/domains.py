"""Domain operations that touch both the workspace's files and the store's `domains`
table, so that the CLI, the demo and Python callers keep the two in step."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mixer.builtin import BUILTINS
from mixer.corpus import AddRequest, add_corpus, remove_corpus
from mixer.domain import DomainMeta, list_domains
from mixer.workspace import Workspace
from store import domain_names, upsert_domain
from store import remove_domain as remove_domain_row


def add_domain(ws: Workspace, request: AddRequest, progress: Callable[[int], None] | None = None) -> DomainMeta:
    """Ingest a domain (atomically) and record it in the store."""
    sync_domain_rows(ws)
    meta = add_corpus(ws, request, progress=progress)
    upsert_domain(ws.db_path, vars(meta))
    return meta


def sync_domain_rows(ws: Workspace) -> None:
    """Make the `domains` table match the domain folders (the folders are the truth): a
    kill -9 between an ingest's rename and its row, or between a removal's two steps,
    leaves them apart until this runs (on every add, remove and `corpus list`)."""
    metas = {m.name: m for m in list_domains(ws.domains_dir)}
    rows = set(domain_names(ws.db_path)) if ws.db_path.exists() else set()
    for name in sorted(set(metas) - rows):
        upsert_domain(ws.db_path, vars(metas[name]))
    for name in sorted(rows - set(metas)):
        remove_domain_row(ws.db_path, name)


def remove_domain(ws: Workspace, name: str) -> None:
    """Delete a domain's files and its row."""
    remove_corpus(ws, name)
    remove_domain_row(ws.db_path, name)


def ensure_builtin_domains(ws: Workspace, max_bytes: int, names: Iterable[str] = BUILTINS) -> list[str]:
    """Build each built-in domain the workspace lacks; returns their names."""
    names = list(names)
    present = {m.name for m in list_domains(ws.domains_dir)}
    for name in names:
        if name not in present:
            add_domain(ws, AddRequest(name=name, builtin=name, builtin_max_bytes=max_bytes))
    return names
