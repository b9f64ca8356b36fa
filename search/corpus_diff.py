"""What changed in the corpus since a search was created (`mixer corpus diff SEARCH`): each
domain it mixed unchanged, changed (another content under its name) or removed, and the
training domains added since. A search records every training domain's content hash at
creation (`ProxySpec.corpus_hashes`); the store keeps every version of a domain
(`store.domain_versions`), so a replaced domain's old version is still described."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pandas as pd

from mixer.domain import training_domains
from mixer.errors import MixerError
from mixer.workspace import Workspace
from search.spec import SearchSpec
from store import domain_versions, get_search


class Change(str, Enum):
    unchanged = "unchanged"
    changed = "changed"          # its name holds another content now
    removed = "removed"
    added = "added"              # a training domain the workspace did not have then
    not_mixed = "not mixed"      # the workspace had it then; the search's --domains left it out
    unknown = "unknown"          # the search predates corpus versions: what it used is not recorded


@dataclass(frozen=True)
class DomainDiff:
    domain: str
    change: Change
    version_then: int | None
    version_now: int | None
    tokens_then: int | None
    tokens_now: int | None


def corpus_diff(ws: Workspace, search_ref: str) -> list[DomainDiff]:
    """One row per domain the search mixed, then per training domain it did not."""
    record = get_search(ws.db_path, search_ref)
    spec = SearchSpec.from_json(record.config)
    if spec.proxy is None:
        raise MixerError(f"search '{record.name}' replays a table of runs: it trained on no corpus of this workspace")
    versions = domain_versions(ws.db_path)
    number = {(r.name, r.content_hash): (int(r.version), int(r.n_tokens)) for r in versions.itertuples()}
    now = {m.name: m for m in training_domains(ws.domains_dir)}
    then = spec.proxy.corpus_hashes
    rows = []
    for name in spec.proxy.domains or []:
        version_then, tokens_then = number.get((name, then.get(name)), (None, None)) if then else (None, None)
        current = now.get(name)
        version_now, tokens_now = (number.get((name, current.content_hash), (None, None))[0], current.n_tokens
                                   ) if current else (None, None)
        change = (Change.unknown if then is None else Change.removed if current is None
                  else Change.unchanged if current.content_hash == then.get(name) else Change.changed)
        rows.append(DomainDiff(name, change, version_then, version_now, tokens_then, tokens_now))
    for name in sorted(set(now) - set(spec.proxy.domains or [])):
        current = now[name]
        change = Change.unknown if then is None else Change.not_mixed if name in then else Change.added
        rows.append(DomainDiff(name, change, None, number.get((name, current.content_hash), (None, None))[0], None,
                               current.n_tokens))
    return rows


def diff_table(rows: list[DomainDiff]) -> pd.DataFrame:
    """The rows as a table: domain, change, then and now (version and tokens)."""
    def shown(version: int | None, tokens: int | None) -> str:
        return "" if version is None and tokens is None else f"v{version or '?'} ({tokens or 0:,} tokens)"

    return pd.DataFrame([{"domain": r.domain, "change": r.change.value, "then": shown(r.version_then, r.tokens_then),
                          "now": shown(r.version_now, r.tokens_now)} for r in rows],
                        columns=["domain", "change", "then", "now"])
