"""`search start --hierarchical` and `--level` (search.staged, issue 33): the stages' plan,
each stage's spec, the refusals, and a whole hierarchical search stopped and resumed."""

import pytest

from mixer import MixerError
from search.evaluators import level_groups, search_domains
from search.groups import expand
from search.spec import SearchSpec, StageSpec
from search.staged import plan_stages, split_of, stage_spec, start
from tests.conftest import synthetic_documents, write_jsonl

LEAVES = ["web/a", "web/b", "web/c", "code/x", "code/y", "math"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    from mixer.corpus import AddRequest
    from mixer.workspace import open_workspace
    from search.domains import add_domain

    tmp_path = tmp_path_factory.mktemp("tree")
    ws = open_workspace(tmp_path / "ws")
    for seed, name in enumerate(LEAVES):
        source = write_jsonl(tmp_path / f"{seed}.jsonl", synthetic_documents(seed, 60, "ab c 01 "))
        add_domain(ws, AddRequest(name=name, sources=[source]))
    return ws


def flat(**values):
    return SearchSpec.from_flat({"name": "h", "tokens": 20_000, **values})


def test_the_parents_budget_goes_heaviest_first_in_proportion_and_the_last_stage_is_the_search():
    groups = {"web": {}, "code": {}, "books": {}}
    stages = plan_stages("h", {"web": 0.6, "code": 0.3, "books": 0.05, "math": 0.05}, groups, 10)
    assert [(s.name, s.parent, s.runs, s.index) for s in stages] == [("h.2", "web", 6, 2), ("h", "code", 3, 3)]
    # books' share (0.5 of a run) is under MIN_STAGE_RUNS: its leaves stay at their token shares
    assert [s.parent for s in plan_stages("h", {"web": 0.15, "code": 0.1, "math": 0.75}, groups, 3)] == ["web"]
    assert plan_stages("h", {"web": 0.0, "math": 1.0}, groups, 8) == []


def test_a_stage_searches_one_parent_with_every_other_weight_fixed_and_the_answer_so_far_as_baseline():
    first = flat(runs=12, replicates=2, validate=True)
    first.stage = StageSpec(of="h", runs=12, validate=True, replicates=2)
    first.proxy.domains = LEAVES
    weights = {"web": 0.5, "code": 0.3, "math": 0.2}
    shares = {"web": {"web/a": 0.5, "web/b": 0.25, "web/c": 0.25}, "code": {"code/x": 0.5, "code/y": 0.5}}
    stage = plan_stages("h", weights, shares, 6)[0]
    spec = stage_spec(first, stage, weights, shares, last=False)
    assert spec.name == "h.2" and spec.stage.parent == "web" and spec.budget.runs == stage.runs
    assert spec.constraints.fixed == {"code": 0.3, "math": 0.2}
    assert spec.proxy.groups == {"code": shares["code"]}
    assert spec.stage.previous == pytest.approx({"code": 0.3, "math": 0.2, "web/a": 0.25, "web/b": 0.125,
                                                 "web/c": 0.125})
    assert sum(expand(spec.stage.previous, spec.proxy.groups).values()) == pytest.approx(1.0)
    assert not spec.validate and spec.budget.replicates == 0          # those are the last stage's
    last = stage_spec(first, plan_stages("h", weights, shares, 6)[-1], weights, shares, last=True)
    assert last.validate and last.budget.replicates == 2
    assert split_of({"web/a": 0.3, "web/b": 0.1, "web/c": 0.1, "code": 0.3, "math": 0.2},
                    shares["web"]) == pytest.approx({"web/a": 0.6, "web/b": 0.2, "web/c": 0.2})


def test_level_zero_holds_each_parent_at_its_token_shares(tree):
    spec = flat(level=0)
    groups = level_groups(tree, spec.proxy)
    assert set(groups) == {"web", "code"} and set(groups["web"]) == {"web/a", "web/b", "web/c"}
    assert sum(groups["web"].values()) == pytest.approx(1.0)
    with pytest.raises(MixerError, match="no domains at level 2"):
        level_groups(tree, flat(level=2).proxy)


@pytest.mark.parametrize("values, message", [
    ({"domains": ["web", "web/*"]}, "'web' is a parent, not a domain: --domains 'web/\\*' takes its leaves"),
    ({"domains": ["web/*", "code/x"], "group_by": {"g": "web/*"}, "level": 0}, "proxy.level and proxy.group_by"),
])
def test_domains_of_a_tree_are_refused_in_one_line(tree, values, message):
    with pytest.raises(MixerError, match=message):
        search_domains(tree, flat(**values).proxy.domains)


@pytest.mark.parametrize("values, message", [
    ({"level": 0}, "drop --level"),
    ({"group_by": {"g": "web/*"}}, "drop --group"),
    ({"max_cost": 4.0}, "drop --max-cost"),
    ({"runs": 3}, "needs --runs 4 or more"),
    ({"domains": ["web/*"]}, "all lie under 'web', so stage 1 has nothing to mix: search them without --hierarchical"),
    ({"domains": ["web/a", "code/x", "math"]}, "no parent holds 2 or more of the search's domains"),
])
def test_what_a_hierarchical_search_cannot_be_is_refused_before_anything_is_stored(tree, values, message):
    from store import list_searches

    with pytest.raises(MixerError, match=message):
        start(tree, flat(**values), run_stage=lambda record: None, say=print)
    assert list_searches(tree.db_path).empty


@pytest.mark.slow  # real proxy runs on Ray: stage 1, a stop, then resume to the last stage
def test_a_hierarchical_search_stopped_between_stages_resumes_to_leaf_weights(tree, tmp_path):
    import shutil

    from mixer.workspace import open_workspace
    from search import driver
    from search.staged import carry_on
    from store import get_search, latest_recommendation, search_runs

    ws = open_workspace(shutil.copytree(tree.root, tmp_path / "ws"))
    ran = []

    def first_stage_only(record):
        ran.append(record.name)
        return driver.run(ws, record.id) if record.name == "h.1" else None   # "Ctrl-C" at stage 2

    assert start(ws, flat(runs=8, parallel=2), first_stage_only, say=print) is None
    first_runs = len(search_runs(ws.db_path, get_search(ws.db_path, "h.1").id))
    name, rec = carry_on(ws, "h", lambda record: ran.append(record.name) or driver.run(ws, record.id), say=print)
    assert ran[0] == "h.1" and "h.1" not in ran[1:] and name == "h" and ran[-1] == "h"
    assert len(search_runs(ws.db_path, get_search(ws.db_path, "h.1").id)) == first_runs   # stage 1 kept
    final = get_search(ws.db_path, "h")
    spec = SearchSpec.from_json(final.config)
    leaves = expand(latest_recommendation(ws.db_path, final.id)["mixture"], spec.proxy.groups)
    assert set(leaves) == set(LEAVES) and sum(leaves.values()) == pytest.approx(1.0)
    parents = latest_recommendation(ws.db_path, get_search(ws.db_path, "h.1").id)["mixture"]
    refined = spec.stage.parent
    assert sum(w for leaf, w in leaves.items() if leaf.startswith(refined + "/")) == pytest.approx(parents[refined])
    with pytest.raises(MixerError, match="already finished"):
        carry_on(ws, "h", lambda record: driver.run(ws, record.id), say=print)
