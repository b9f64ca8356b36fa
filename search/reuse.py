"""`search start --reuse SEARCH`: a search after the corpus changed, starting from an earlier
search's answer instead of from nothing (olmix's mixture reuse).

What changed is `mixer corpus diff SEARCH` (search.corpus_diff). The new search's domains
are the earlier search's unchanged and changed domains and the training domains added
since; removed domains are gone, and the search, not a rule, gives their weight to the
others. By `--reuse-mode`:
- `aggregate` (default): the unchanged domains the earlier answer used are one group at
  that answer's ratios (search.groups), so the search has fewer coordinates: the group's
  total weight, each changed domain and each added one;
- `warm-start`: every domain free;
- `full`: a full re-search; only the earlier search's name is recorded.
In `aggregate` and `warm-start`, the earlier answer (the group at its total, changed
domains at their old weights, added ones at 0, renormalised) is the `previous` baseline:
run first, and what the new answer must beat beyond the seed noise (search.guard).
"""

from __future__ import annotations

from dataclasses import replace

from mixer.errors import MixerError
from mixer.workspace import Workspace
from search.corpus_diff import Change, corpus_diff, searched_spec
from search.groups import expand
from search.spec import ReuseMode, SearchSpec
from store import get_search, latest_recommendation


def reuse_spec(ws: Workspace, spec: SearchSpec) -> SearchSpec:
    """`spec` completed from the search it reuses: its domains, its group and the earlier
    answer as a baseline. Every refusal is one line, before anything is stored."""
    reuse = spec.reuse
    if spec.proxy is None:
        raise MixerError("--reuse starts from an earlier proxy search; a table search replays its table")
    if spec.proxy.domains:
        raise MixerError("--reuse chooses the domains (the earlier search's and those added since); drop --domains")
    if spec.proxy.group_by or spec.proxy.level is not None:
        raise MixerError("--reuse makes its own group of the unchanged domains; drop --group and --level")
    earlier = get_search(ws.db_path, reuse.search)
    before = searched_spec(earlier)
    if reuse.mode is not ReuseMode.full:
        refuse_other_proxies(earlier.name, before, spec)
    answer = latest_recommendation(ws.db_path, earlier.id)
    if answer is None and reuse.mode is not ReuseMode.full:
        why = "it was cancelled before it answered" if earlier.status == "cancelled" else (
            f"finish it first (`mixer search resume {earlier.name}`)")
        raise MixerError(f"search '{earlier.name}' has no answer to reuse: {why} (or use --reuse-mode full)")
    rows = corpus_diff(ws, earlier.name)
    if any(r.change is Change.unknown for r in rows):
        raise MixerError(f"search '{earlier.name}' predates corpus versions: what its domains held is not recorded "
                         "(start a new search instead)")
    by_change = {change: [r.domain for r in rows if r.change is change] for change in Change}
    if not (by_change[Change.changed] or by_change[Change.added] or by_change[Change.removed]):
        raise MixerError(f"nothing changed since search '{earlier.name}' (`mixer corpus diff {earlier.name}`): "
                         "its answer stands")
    domains = by_change[Change.unchanged] + by_change[Change.changed] + by_change[Change.added]
    if len(domains) < 2:
        raise MixerError(f"after the changes since search '{earlier.name}' fewer than 2 domains are left to mix")
    if reuse.mode is ReuseMode.full:
        return replace(spec, proxy=replace(spec.proxy, domains=domains))
    weights = expand(answer["mixture"], before.proxy.groups)
    groups = (aggregate(weights, by_change[Change.unchanged], domains, group_name(earlier.name, ws))
              if reuse.mode is ReuseMode.aggregate else {})
    if reuse.mode is ReuseMode.aggregate and not groups:
        reuse = replace(reuse, mode=ReuseMode.warm_start, why=(
            "every domain stays free: fewer than 2 unchanged domains carry the earlier answer's weight, or a "
            "group would be the only weight left to search"))
    return replace(spec, proxy=replace(spec.proxy, domains=domains, groups=groups),
                   reuse=replace(reuse, previous=previous_answer(weights, domains, groups)))


# Training settings a reused answer depends on (the seed aside: a new search has its own).
SAME_TRAINING = ("preset", "tokens", "seq_len", "batch_size", "lr")


def refuse_other_proxies(name: str, before: SearchSpec, spec: SearchSpec) -> None:
    """An answer found with other proxies is no answer for these: one line naming them."""
    then, now = before.proxy.train, spec.proxy.train
    differ = [f"--{f.replace('_', '-')} {getattr(then, f)} (now {getattr(now, f)})" for f in SAME_TRAINING
              if getattr(then, f) != getattr(now, f)]
    if differ:
        raise MixerError(f"search '{name}' trained its proxies with {', '.join(differ)}: reusing its answer needs the "
                         "same proxies (or --reuse-mode full)")


def aggregate(weights: dict[str, float], unchanged: list[str], domains: list[str], name: str
              ) -> dict[str, dict[str, float]]:
    """The group of the unchanged domains the earlier answer used, at its ratios; none when
    fewer than 2 are used (nothing to aggregate), or when the group would be the search's
    only coordinate (only removals: the search must still spread the removed weight, so
    every domain stays free, as in warm-start)."""
    kept = {d: weights[d] for d in unchanged if weights.get(d, 0.0) > 0}
    if len(kept) < 2 or len(domains) - len(kept) < 1:
        return {}
    total = sum(kept.values())
    return {name: {d: w / total for d, w in kept.items()}}


def group_name(earlier: str, ws: Workspace) -> str:
    """The aggregate's name: `<earlier search>-kept`, refused if a domain has it."""
    name = f"{earlier}-kept"
    if ws.domain_dir(name).exists():
        raise MixerError(f"a domain is named '{name}', the name the reused domains' group would take; rename it")
    return name


def previous_answer(weights: dict[str, float], domains: list[str], groups: dict[str, dict[str, float]]
                    ) -> dict[str, float] | None:
    """The earlier answer over the new search's coordinates: a group at its leaves' total,
    other domains at their weight (0 for added ones), renormalised (a removed domain's
    weight spread in proportion); None when it put no weight on any domain left."""
    grouped = {leaf for shares in groups.values() for leaf in shares}
    point = {d: weights.get(d, 0.0) for d in domains if d not in grouped}
    point |= {name: sum(weights.get(leaf, 0.0) for leaf in shares) for name, shares in groups.items()}
    total = sum(point.values())
    return {k: v / total for k, v in point.items()} if total > 0 else None
