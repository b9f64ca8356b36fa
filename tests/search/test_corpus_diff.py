"""`mixer corpus diff`: what changed in the corpus since a search was created (issue 33)."""

import pytest

from mixer import MixerError
from mixer.corpus import AddRequest
from mixer.domain import training_domains
from mixer.ingest import IngestConfig
from mixer.workspace import open_workspace
from proxies.config import TrainConfig
from search.corpus_diff import Change, corpus_diff, diff_table
from search.domains import add_domain, remove_domain
from search.spec import ProxySpec, SearchSpec
from store import SearchRecord, create_search, domain_versions, new_id
from tests.conftest import synthetic_documents, write_jsonl


def add(ws, tmp_path, name, seed, replace=False):
    source = write_jsonl(tmp_path / f"{name}-{seed}.jsonl", synthetic_documents(seed, 60, "ab c 01 "))
    return add_domain(ws, AddRequest(name=name, sources=[source], ingest=IngestConfig(replace=replace)), force=True)


def search_over(ws, name, domains, recorded=True, tokens=20_000):
    """A search as `search start` stores it: its domains and, unless it predates corpus
    versions, every training domain's content hash."""
    hashes = {m.name: m.content_hash for m in training_domains(ws.domains_dir)} if recorded else None
    spec = SearchSpec(name=name, proxy=ProxySpec(train=TrainConfig(tokens=tokens), domains=domains,
                                                 corpus_hashes=hashes))
    create_search(ws.db_path, SearchRecord(id=new_id("s"), name=name, backend="regmix", evaluator="proxy",
                                           config=spec.to_json()))


@pytest.fixture
def changed_ws(tmp_path):
    """Four domains, a search over three of them; then web is replaced, math removed and
    legal added."""
    ws = open_workspace(tmp_path / "ws")
    for seed, name in enumerate(["web", "code", "math", "books"]):
        add(ws, tmp_path, name, seed)
    search_over(ws, "before", ["web", "code", "math"])
    add(ws, tmp_path, "web", 10, replace=True)
    remove_domain(ws, "math", force=True)
    add(ws, tmp_path, "legal", 11)
    return ws


def test_the_diff_says_what_changed_was_removed_and_added_since_the_search(changed_ws):
    rows = {r.domain: r for r in corpus_diff(changed_ws, "before")}
    assert {d: r.change for d, r in rows.items()} == {
        "web": Change.changed, "code": Change.unchanged, "math": Change.removed, "legal": Change.added,
        "books": Change.not_mixed}
    assert (rows["web"].version_then, rows["web"].version_now) == (1, 2)
    assert rows["web"].tokens_then != rows["web"].tokens_now and rows["math"].version_now is None
    table = diff_table(list(rows.values()))
    assert list(table.columns) == ["domain", "change", "then", "now"]
    assert table.set_index("domain").loc["web", "then"].startswith("v1 (")
    data = diff_table(list(rows.values()), shown=False).set_index("domain")    # csv and json: a field each
    assert (data.loc["web", "version_then"], data.loc["web", "version_now"]) == (1, 2)
    assert data.loc["legal"].isna()[["version_then", "tokens_then"]].all()


def test_a_replaced_domain_keeps_its_old_versions_metadata_and_a_removed_one_is_marked(changed_ws):
    versions = domain_versions(changed_ws.db_path)
    web = versions[versions.name == "web"]
    assert list(web.version) == [1, 2] and web.content_hash.nunique() == 2 and web.removed_at.isna().all()
    math = versions[versions.name == "math"]
    assert len(math) == 1 and math.removed_at.notna().all()


def test_a_removed_domain_added_back_with_its_content_is_unchanged_and_its_removal_stays_on_record(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    add(ws, tmp_path, "web", 0)
    add(ws, tmp_path, "code", 1)
    search_over(ws, "s", ["web", "code"])
    remove_domain(ws, "web", force=True)
    add(ws, tmp_path, "web", 0)
    web = {r.domain: r for r in corpus_diff(ws, "s")}["web"]
    assert web.change is Change.unchanged and (web.version_then, web.version_now) == (1, 2)
    web = domain_versions(ws.db_path).query("name == 'web'")
    assert list(web.version) == [1, 2] and web.removed_at.notna().tolist() == [True, False]
    assert web.content_hash.nunique() == 1


def test_a_search_that_predates_corpus_versions_is_unknown_not_unchanged(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    add(ws, tmp_path, "web", 0)
    add(ws, tmp_path, "code", 1)
    search_over(ws, "old", ["web", "code"], recorded=False)
    assert {r.change for r in corpus_diff(ws, "old")} == {Change.unknown}


def test_a_table_search_or_a_missing_one_is_a_one_line_error(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    add(ws, tmp_path, "web", 0)
    spec = SearchSpec(name="t", table={"search": "past"})
    create_search(ws.db_path, SearchRecord(id=new_id("s"), name="t", backend="random", evaluator="table",
                                           config=spec.to_json()))
    with pytest.raises(MixerError, match="search 't' replays a table of runs"):
        corpus_diff(ws, "t")
    with pytest.raises(MixerError, match="nope"):
        corpus_diff(ws, "nope")
