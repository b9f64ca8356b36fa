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
from store.records import SearchKind, SearchRecord


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
    spec = searched_spec(record)
    versions = domain_versions(ws.db_path).itertuples()
    first, latest = {}, {}      # (name, content) -> (version, tokens): the first to hold it, and the current
    for r in versions:
        first.setdefault((r.name, r.content_hash), (int(r.version), int(r.n_tokens)))
        latest[(r.name, r.content_hash)] = (int(r.version), int(r.n_tokens))
    now = {m.name: m for m in training_domains(ws.domains_dir)}
    then = spec.proxy.corpus_hashes
    rows = []
    for name in spec.proxy.domains or []:
        version_then, tokens_then = first.get((name, then.get(name)), (None, None)) if then else (None, None)
        current = now.get(name)
        version_now, tokens_now = (latest.get((name, current.content_hash), (None, None))[0], current.n_tokens
                                   ) if current else (None, None)
        change = (Change.unknown if then is None else Change.removed if current is None
                  else Change.unchanged if current.content_hash == then.get(name) else Change.changed)
        rows.append(DomainDiff(name, change, version_then, version_now, tokens_then, tokens_now))
    for name in sorted(set(now) - set(spec.proxy.domains or [])):
        current = now[name]
        change = Change.unknown if then is None else Change.not_mixed if name in then else Change.added
        rows.append(DomainDiff(name, change, None, latest.get((name, current.content_hash), (None, None))[0], None,
                               current.n_tokens))
    return rows


def searched_spec(earlier: SearchRecord) -> SearchSpec:
    """The spec of the proxy search `earlier`; anything else is one line."""
    if earlier.kind is not SearchKind.search:
        raise MixerError(f"'{earlier.name}' is {KIND_WORDS[earlier.kind]}, not a search over this workspace's corpus")
    before = SearchSpec.from_json(earlier.config)
    if before.proxy is None:
        raise MixerError(f"search '{earlier.name}' replays a table of runs: it trained on no corpus of this workspace")
    return before


KIND_WORDS = {SearchKind.imported: "imported runs", SearchKind.online: "an online run",
              SearchKind.proxy_train: "one proxy run (`proxy train`)"}


def diff_table(rows: list[DomainDiff], shown: bool = True) -> pd.DataFrame:
    """The rows as a table: domain, change, then and now; `shown`, for reading (`v2 (1,234
    tokens)`), else each a column of its own (versions and tokens as nullable integers)."""
    frame = pd.DataFrame([vars(r) | {"change": r.change.value} for r in rows],
                         columns=["domain", "change", "version_then", "version_now", "tokens_then", "tokens_now"])
    for column in ("version_then", "version_now", "tokens_then", "tokens_now"):
        frame[column] = frame[column].astype("Int64")
    if not shown:
        return frame

    def text(version, tokens) -> str:
        return "" if pd.isna(version) and pd.isna(tokens) else f"v{version if not pd.isna(version) else '?'} " \
                                                              f"({0 if pd.isna(tokens) else tokens:,} tokens)"

    return pd.DataFrame({"domain": frame.domain, "change": frame.change,
                         "then": [text(v, t) for v, t in zip(frame.version_then, frame.tokens_then)],
                         "now": [text(v, t) for v, t in zip(frame.version_now, frame.tokens_now)]})
