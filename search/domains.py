"""Domain operations that touch both the workspace's files and the store's `domains`
table, so that the CLI, the demo and Python callers keep the two in step."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from mixer.builtin import BUILTINS
from mixer.clustering import ClusteringResult, ClusterRequest, cluster_corpus
from mixer.clustering.build import PROJECTION, Progress, replaced_domains
from mixer.clustering.build import domain_names as cluster_domain_names
from mixer.corpus import AddRequest, add_corpus, remove_corpus, workspace_tokenizer
from mixer.domain import DomainMeta, list_domains
from mixer.errors import MixerError
from mixer.hierarchy import refuse_tree_clash
from mixer.ingest import IngestConfig
from mixer.names import check_domain_name
from mixer.workspace import Workspace
from store import clustering_names, domain_names, searches_using_domain, get_clustering, upsert_domain, write_clustering
from store import remove_domain as remove_domain_row


def add_domain(ws: Workspace, request: AddRequest, progress: Callable[[int], None] | None = None,
               force: bool = False) -> DomainMeta:
    """Ingest a domain (atomically) and record it in the store; replacing one that
    searches mixed needs `force`."""
    sync_domain_rows(ws)
    refuse_tree_clash([check_domain_name(request.name)], [m.name for m in list_domains(ws.domains_dir)])
    check_replace(ws, request, force)
    meta = add_corpus(ws, request, progress=progress)
    upsert_domain(ws.db_path, vars(meta))
    return meta


def check_replace(ws: Workspace, request: AddRequest, force: bool) -> None:
    """Replacing a domain that searches mixed needs `force` (checked before any reading)."""
    if request.ingest.replace and ws.domain_dir(request.name).exists():
        refuse_if_mixed(ws, [request.name], force, "replace it")


def train_embedder_lm(preset: str, budget: int, seed: int, tokens, vocab_size: int):
    """The proxy embedder's LM (mixer.clustering.embedders.LmTrainer), trained by proxies."""
    from proxies.train import TrainConfig, train_on_tokens

    return train_on_tokens(TrainConfig(preset=preset, tokens=budget, seed=seed, device="cpu"), tokens, vocab_size)


def cluster_domains(ws: Workspace, request: ClusterRequest,
                    progress: Progress = lambda phase, done, total: None, force: bool = False) -> ClusteringResult:
    """Cluster an unlabeled corpus into domains (mixer.clustering) and record the domains
    and the clustering in the store, in one transaction after the files are in place.
    Redoing a clustering whose domains searches mixed needs `force`: their runs would
    name domains that then hold other documents."""
    sync_domain_rows(ws)
    previous = get_clustering(ws.db_path, request.name) if ws.db_path.exists() else None
    replaced = replaced_domains(ws, request, previous)
    kept = [m.name for m in list_domains(ws.domains_dir) if m.name not in replaced]
    refuse_tree_clash(cluster_domain_names(request.name, request.cluster.clusters), kept)
    refuse_if_mixed(ws, replaced, force, f"redo clustering '{request.name}'")
    tokenizer = workspace_tokenizer(ws, request.tokenizer)
    result = cluster_corpus(ws, request, tokenizer, previous, progress, trainer=train_embedder_lm)
    write_clustering(ws.db_path, result.record, [vars(m) for m in result.metas], result.retired)
    return result


def cluster_table(ws: Workspace, name: str) -> pd.DataFrame:
    """One row per cluster of clustering `name`, largest first; `present` says whether its
    domain is still in the workspace (a user may remove one)."""
    clustering = get_clustering(ws.db_path, name) if ws.db_path.exists() else None
    if clustering is None:
        known = clustering_names(ws.db_path) if ws.db_path.exists() else []
        raise MixerError(f"no clustering named '{name}'" + (f" (known: {', '.join(known)})" if known else
                                                           "; make one with `mixer corpus cluster`"))
    present = {m.name for m in list_domains(ws.domains_dir)}
    return pd.DataFrame([{"cluster": c.cluster, "domain": c.domain, "docs": c.n_docs, "tokens": c.n_tokens,
                          "centroid_norm": round(c.centroid_norm, 4), "top_terms": c.top_terms,
                          "initial_clusters": len(c.parents), "parents": c.parents,
                          "present": c.domain in present} for c in clustering.clusters])


def plot_clustering(ws: Workspace, name: str, output: Path) -> None:
    """`mixer plot --clusters NAME`: the stored 2-D projection, coloured by cluster."""
    from search.plot import plot_clusters

    table = cluster_table(ws, name)
    projection = ws.clustering_dir(name) / PROJECTION
    if not projection.is_file():
        raise MixerError(f"clustering '{name}' has no projection file {projection}; run `mixer corpus cluster "
                         f"{name} ... --replace` again")
    plot_clusters(output, name, pd.read_parquet(projection), table)


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


def remove_domain(ws: Workspace, name: str, force: bool = False) -> None:
    """Delete a domain's files and its row; a domain that searches mixed needs `force`
    (their runs stay, but predicting from them or resuming them needs the domain)."""
    refuse_if_mixed(ws, [check_domain_name(name)], force, "remove it")
    remove_corpus(ws, name)
    remove_domain_row(ws.db_path, name)


def refuse_if_mixed(ws: Workspace, names: list[str], force: bool, action: str) -> None:
    """Unless `force`, refuse to change domains that searches mixed, naming them."""
    if force or not names or not ws.db_path.exists():
        return
    for name in names:
        users = searches_using_domain(ws.db_path, name)
        if users:
            shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
            raise MixerError(f"domain '{name}' is mixed by search(es) {shown}; use --force to {action} anyway")


def ensure_builtin_domains(ws: Workspace, max_bytes: int, names: Iterable[str] = BUILTINS,
                           eval_only: bool = False) -> list[str]:
    """Build each built-in domain (or, `eval_only`, evaluation set) the workspace lacks;
    returns their names."""
    names = list(names)
    present = {m.name for m in list_domains(ws.domains_dir)}
    for name in names:
        if name not in present:
            add_domain(ws, AddRequest(name=name, builtin=name, builtin_max_bytes=max_bytes,
                                      ingest=IngestConfig(eval_only=eval_only)))
    return names
