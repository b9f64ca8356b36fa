"""`search start --reuse`: a search after the corpus changed, from an earlier answer (issue 33)."""

import numpy as np
import pytest

from mixer import MixerError
from search.evaluators import build_space
from search.groups import expand
from search.reuse import reuse_spec
from search.spec import SearchSpec
from store import create_search, new_id, write_recommendation, SearchRecord
from tests.search.test_corpus_diff import add, search_over

ANSWER = {"web": 0.4, "code": 0.3, "math": 0.2, "books": 0.1}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Four domains and a finished search over them; then web is replaced, books removed and
    legal added (built once: each test works on a copy)."""
    from mixer.workspace import open_workspace
    from search.domains import remove_domain

    tmp_path = tmp_path_factory.mktemp("reuse")
    ws = open_workspace(tmp_path / "ws")
    for seed, name in enumerate(["web", "code", "math", "books"]):
        add(ws, tmp_path, name, seed)
    search_over(ws, "before", ["web", "code", "math", "books"])
    record = SearchRecord(id=new_id("s"), name="table", backend="random", evaluator="table",
                          config=SearchSpec(name="table", table={"search": "x"}).to_json())
    create_search(ws.db_path, record)
    add(ws, tmp_path, "web", 10, replace=True)
    remove_domain(ws, "books", force=True)
    add(ws, tmp_path, "legal", 11)
    return ws.root


@pytest.fixture
def ws(built, tmp_path):
    import shutil

    from mixer.workspace import open_workspace

    return open_workspace(shutil.copytree(built, tmp_path / "ws"))


def answer(ws, mixture=ANSWER):
    from store import get_search

    write_recommendation(ws.db_path, get_search(ws.db_path, "before").id, mixture, 2.5, 0.1, {"rule": "model"})


def flat(**values):
    return SearchSpec.from_flat({"name": "after", "reuse": "before", "tokens": 20_000, **values})


def test_aggregate_keeps_the_unchanged_domains_as_one_group_at_the_earlier_ratios(ws):
    answer(ws)
    spec = reuse_spec(ws, flat())
    assert spec.proxy.domains == ["code", "math", "web", "legal"]
    assert spec.proxy.groups == {"before-kept": pytest.approx({"code": 0.6, "math": 0.4})}
    # the earlier answer: web 0.4 and the group's 0.5, legal 0; books' 0.1 spread in proportion
    assert spec.reuse.previous == pytest.approx({"web": 0.4 / 0.9, "legal": 0.0, "before-kept": 0.5 / 0.9})
    built = build_space(ws, spec)
    assert built.space.domains == ["web", "legal", "before-kept"] and built.leaves == spec.proxy.domains
    assert list(built.space.baselines)[0] == "previous"      # the design runs it first
    assert built.space.baselines["previous"][1] == 0.0       # legal: exactly 0, not a projection's 1e-17
    tokens = {m: built.space.prior[i] for i, m in enumerate(built.space.domains)}
    assert tokens["before-kept"] > tokens["web"]          # the group's prior counts both of its domains' tokens


def test_a_groups_weight_expands_to_leaf_weights_that_keep_its_ratios_exactly(ws):
    answer(ws)
    spec = reuse_spec(ws, flat())
    leaves = expand({"web": 0.3, "legal": 0.2, "before-kept": 0.5}, spec.proxy.groups)
    assert sum(leaves.values()) == pytest.approx(1.0)
    assert leaves["code"] / leaves["math"] == pytest.approx(0.3 / 0.2, rel=1e-12)
    assert leaves["code"] + leaves["math"] == pytest.approx(0.5)


def test_warm_start_frees_every_domain_and_full_takes_only_the_domains(ws):
    answer(ws)
    warm = reuse_spec(ws, flat(reuse_mode="warm-start"))
    assert warm.proxy.groups == {} and warm.reuse.previous == pytest.approx(
        {"web": 0.4 / 0.9, "code": 0.3 / 0.9, "math": 0.2 / 0.9, "legal": 0.0})
    full = reuse_spec(ws, flat(reuse_mode="full"))
    assert full.proxy.groups == {} and full.reuse.previous is None
    assert build_space(ws, full).space.baselines.keys() == {"uniform", "token-share"}


@pytest.mark.parametrize("values, message", [
    ({"tokens": 10_000}, r"trained its proxies with --tokens 20000 \(now 10000\): reusing its answer needs the same"),
    ({"seq_len": 64}, r"trained its proxies with --seq-len 256 \(now 64\)"),
    ({"domains": ["web"]}, "--reuse chooses the domains"),
    ({"reuse": "table"}, "search 'table' replays a table of runs"),
    ({"reuse": "nope"}, "nope"),
])
def test_a_reuse_that_cannot_be_is_one_line(ws, values, message):
    answer(ws)
    with pytest.raises(MixerError, match=message):
        reuse_spec(ws, flat(**values))


def test_a_search_without_an_answer_or_without_changes_is_refused(ws, tmp_path):
    from store import get_search, set_search_status

    with pytest.raises(MixerError, match=r"search 'before' has no answer to reuse: finish it first"):
        reuse_spec(ws, flat())
    set_search_status(ws.db_path, get_search(ws.db_path, "before").id, "cancelled")
    with pytest.raises(MixerError, match="it was cancelled before it answered"):
        reuse_spec(ws, flat())
    assert reuse_spec(ws, flat(reuse_mode="full")).proxy.domains      # full takes no answer
    search_over(ws, "now", ["web", "code", "math", "legal"])
    with pytest.raises(MixerError, match="nothing changed since search 'now'"):
        reuse_spec(ws, flat(reuse="now", reuse_mode="full"))


def test_imported_runs_are_no_search_to_reuse_or_diff(ws):
    from search.corpus_diff import corpus_diff
    from store import SearchKind

    create_search(ws.db_path, SearchRecord(id=new_id("s"), name="imp", backend="import", evaluator="table",
                                           config={"metrics": "m.csv"}, kind=SearchKind.imported))
    for call in (lambda: reuse_spec(ws, flat(reuse="imp")), lambda: corpus_diff(ws, "imp")):
        with pytest.raises(MixerError, match="'imp' is imported runs, not a search over this workspace's corpus"):
            call()


def test_a_search_whose_domains_changed_is_not_resumed(ws):
    from search.driver import refuse_changed_corpus
    from store import get_search

    with pytest.raises(MixerError, match=r"domain web, books changed since search 'before' started"):
        refuse_changed_corpus(ws, get_search(ws.db_path, "before"))


def test_bounds_on_a_domain_inside_the_group_are_refused(ws):
    answer(ws)
    spec = reuse_spec(ws, flat(min_weights={"code": 0.1}))
    with pytest.raises(MixerError, match="domain code is inside group 'before-kept' at a fixed share"):
        build_space(ws, spec)
    assert np.isclose(build_space(ws, reuse_spec(ws, flat(min_weights={"before-kept": 0.2}))).space.bounds.lower[-1],
                      0.2)


def test_only_removals_leave_every_domain_free_so_the_search_spreads_the_removed_weight():
    from search.reuse import aggregate

    weights = {"web": 0.5, "code": 0.3, "math": 0.2}
    assert aggregate(weights, ["web", "code"], ["web", "code"], "g") == {}          # math removed, nothing else
    assert aggregate(weights, ["web", "code"], ["web", "code", "legal"], "g") == {
        "g": pytest.approx({"web": 0.625, "code": 0.375})}
    assert aggregate({"web": 1.0, "code": 0.0}, ["web", "code"], ["web", "code", "legal"], "g") == {}  # one used


def test_predict_names_the_group_when_given_its_domains(tmp_path):
    from search.views import PredictRequest, _mixtures_frame

    path = tmp_path / "leaf.csv"
    path.write_text("web,legal,code,math\n0.4,0.1,0.3,0.2\n")
    with pytest.raises(MixerError, match=r"column\(s\) code, math are inside group 'before-kept' of search 'after' at "
                                         r"fixed shares; give the group's weight in a column 'before-kept' instead"):
        _mixtures_frame(PredictRequest(path), ["web", "legal", "before-kept"], "after",
                        {"before-kept": {"code": 0.6, "math": 0.4}})


def test_group_searches_a_sources_domains_as_one_at_their_token_shares(ws):
    from dataclasses import replace

    from mixer.domain import training_domains
    from search.driver import create
    from search.evaluators import token_share_groups

    spec = SearchSpec.from_flat({"name": "by-source", "tokens": 20_000, "group_by": {"prose": "[cw]*"}})
    tokens = {m.name: m.n_tokens for m in training_domains(ws.domains_dir)}
    groups = token_share_groups(ws, spec.proxy)
    total = tokens["code"] + tokens["web"]
    assert groups == {"prose": pytest.approx({"code": tokens["code"] / total, "web": tokens["web"] / total})}
    built = build_space(ws, replace(spec, proxy=replace(spec.proxy, groups=groups)))
    assert built.space.domains == ["legal", "math", "prose"] and built.leaves == ["code", "legal", "math", "web"]
    for group_by, message in [({"one": "web"}, "--group one=web holds 1 domain; a group needs at least 2"),
                              ({"g": "nope*"}, "unknown domain pattern 'nope\\*'"),
                              ({"web": "[cm]*"}, "group 'web' has the name of a domain of the search")]:
        with pytest.raises(MixerError, match=message):
            create(ws, SearchSpec.from_flat({"name": "g", "tokens": 20_000, "group_by": group_by}))
    with pytest.raises(MixerError, match="--reuse makes its own group"):
        create(ws, flat(group_by={"prose": "[cw]*"}))


def test_a_groups_cap_is_the_tightest_of_its_domains_caps_over_their_shares():
    from search.groups import group_caps, totals

    leaves, groups = ["a", "b", "c"], {"g": {"b": 0.25, "c": 0.75}}
    assert list(group_caps(leaves, np.array([0.5, 0.2, 0.9]), groups)) == pytest.approx([0.5, 0.8])   # b: 0.2/0.25
    assert list(totals(leaves, np.array([10.0, 20.0, 30.0]), groups)) == [10.0, 50.0]


def test_predict_names_every_group_whose_domains_a_csv_gives(tmp_path):
    from search.views import PredictRequest, _mixtures_frame

    path = tmp_path / "leaves.csv"
    path.write_text("web/a,web/b,code/x,code/y,math\n0.2,0.2,0.2,0.2,0.2\n")
    groups = {"web": {"web/a": 0.5, "web/b": 0.5}, "code": {"code/x": 0.5, "code/y": 0.5}}
    with pytest.raises(MixerError, match=r"column\(s\) web/a, web/b are inside group 'web'; code/x, code/y are inside "
                                         r"group 'code' of search 'lv0' at fixed shares; give each group's weight in "
                                         r"a column named as the group \(web, code\) instead"):
        _mixtures_frame(PredictRequest(path), ["math", "web", "code"], "lv0", groups)
