"""Domains within domains, as a user runs them (issue 33): nested names in `corpus add`,
the refusals of `--domains`, `--level` and `--hierarchical` (one line, exit 2, nothing
stored), and a hierarchical search on the embedded Ray cluster down to its export."""

import json

import pytest

from store import run_sql
from tests.conftest import mixer_cli, one_error_line, run_mixer, synthetic_documents, write_jsonl

QUICK = ["--preset", "tiny", "--tokens", "16k", "--seq-len", "64", "--batch-size", "8", "--cpus", "1"]
DOMAINS = {"webs": "abc ", "web/news": "abd ", "web/blogs": "abe\n", "code/x": "{}();\n", "code/y": "{}[];\n",
           "math": "0123+="}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tree")
    ws = tmp / "ws"
    for seed, (name, alphabet) in enumerate(DOMAINS.items()):
        src = write_jsonl(tmp / f"{seed}.jsonl", synthetic_documents(seed, 60, alphabet))
        added = mixer_cli("corpus", "add", name, str(src), workspace=ws)
        assert added.returncode == 0, added.stderr
    return ws


def searches(ws) -> list[str]:
    return run_sql(ws / "mixer.duckdb", "select name from searches").name.tolist()


def test_nested_names_are_listed_and_a_bad_path_or_a_parent_with_documents_is_refused(tree, tmp_path):
    listed = mixer_cli("corpus", "list", "--format", "json", workspace=tree)
    assert {r["name"] for r in json.loads(listed.stdout)} == set(DOMAINS)
    src = str(write_jsonl(tmp_path / "x.jsonl", synthetic_documents(9, 20, "ab ")))
    assert "bad domain name 'web//x'" in one_error_line(mixer_cli("corpus", "add", "web//x", src, workspace=tree))
    said = one_error_line(mixer_cli("corpus", "add", "web", src, workspace=tree))
    assert "'web' is the parent of domain 'web/blogs', and a parent is a name, not a domain" in said
    said = one_error_line(mixer_cli("corpus", "add", "math/more", src, workspace=tree))
    assert "domain 'math' holds documents, so 'math/more' cannot lie under it" in said
    clustered = mixer_cli("corpus", "cluster", "math", src, "--clusters", "2", workspace=tree)
    assert "domain 'math' holds documents, so 'math/00' cannot lie under it" in one_error_line(clustered)
    listed_again = mixer_cli("corpus", "list", "--format", "json", workspace=tree)
    assert {r["name"] for r in json.loads(listed_again.stdout)} == set(DOMAINS)


@pytest.mark.parametrize("flags, message", [
    (["--domains", "web,web/news"], "'web' is a parent, not a domain: --domains 'web/*' takes its leaves"),
    (["--level", "3"], "no domains at level 3: the deepest of the search's domains is at level 1"),
    (["--level", "0", "--group", "g=code/*"], "--level and --group both group the domains"),
    (["--hierarchical", "--runs", "3"], "--hierarchical needs --runs 4 or more"),
    (["--hierarchical", "--level", "1"], "--hierarchical chooses its own coordinates at each stage; drop --level"),
    (["--hierarchical", "--domains", "web/*"], "all lie under 'web', so stage 1 has nothing to mix"),
    (["--hierarchical", "--min", "web/news=0.1"], "domain web/news is inside group 'web' at a fixed share"),
])
def test_a_tree_search_a_user_cannot_run_is_refused_in_one_line(tree, flags, message):
    assert message in one_error_line(mixer_cli("search", "start", *flags, *QUICK, workspace=tree))
    assert searches(tree) == []


@pytest.mark.slow  # a hierarchical search: three stages of real proxy runs on Ray
def test_a_hierarchical_search_answers_over_every_leaf_and_exports_them(tree, tmp_path):
    import shutil

    ws = shutil.copytree(tree, tmp_path / "ws")
    ran = run_mixer("search", "start", "--hierarchical", "--name", "h", "--runs", "8", "--parallel", "2", *QUICK,
                    workspace=ws, timeout=900)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "stage 1 'h.1' mixes math, webs, code, web" in ran.stdout and "h: the answer over every leaf" in ran.stdout
    assert set(searches(ws)) >= {"h.1", "h"}
    exported = json.loads(run_mixer("export", "h", "--format", "json", workspace=ws).stdout)["mixture"]
    assert set(exported) == {"webs", "web/news", "web/blogs", "code/x", "code/y", "math"}
    assert sum(exported.values()) == pytest.approx(1.0)
    status = run_mixer("search", "status", "h", workspace=ws).stdout
    assert "of hierarchical search 'h'" in status
    again = run_mixer("search", "resume", "h", workspace=ws)
    assert "hierarchical search 'h' is already finished" in one_error_line(again)
