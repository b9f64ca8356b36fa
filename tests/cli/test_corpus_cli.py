import json

import pytest

from tests.conftest import mixer_cli, one_error_line, synthetic_documents, write_jsonl


def test_add_list_show_remove(workspace, tmp_path):
    src = write_jsonl(tmp_path / "web.jsonl", synthetic_documents(0, 100, "ab c"))
    added = mixer_cli("corpus", "add", "web", str(src), workspace=workspace)
    assert added.returncode == 0, added.stderr
    listed = mixer_cli("corpus", "list", "--format", "json", workspace=workspace)
    (row,) = json.loads(listed.stdout)
    assert row["name"] == "web" and row["docs"] + row["val_docs"] == 100
    stored = mixer_cli("sql", "select name, n_tokens from domains", "--format", "json", workspace=workspace)
    assert json.loads(stored.stdout) == [{"name": "web", "n_tokens": row["tokens"]}]
    shown = mixer_cli("corpus", "show", "web", "--verify", workspace=workspace)
    assert json.loads(shown.stdout)["verified"] == "full"
    assert mixer_cli("corpus", "remove", "web", workspace=workspace).returncode == 0
    assert json.loads(mixer_cli("corpus", "list", "-f", "json", workspace=workspace).stdout) == []
    assert json.loads(mixer_cli("sql", "select * from domains", "-f", "json", workspace=workspace).stdout) == []


@pytest.mark.parametrize("setup, args, needle", [
    (None, ["corpus", "add", "x", "/no/such/file.jsonl"], "source not found"),
    (None, ["corpus", "add", "x"], "exactly one"),
    (None, ["corpus", "add", "x", "--builtin", "java"], "unknown built-in source 'java'"),
    ("tok", ["corpus", "add", "x", "SRC", "--tokenizer", "TOK"], "cannot read tokenizer"),
    ("src", ["corpus", "add", "bad/../name", "SRC"], "bad domain name"),
    ("dup", ["corpus", "add", "web", "SRC"], "already exists; use --replace"),
    (None, ["corpus", "show", "ghost"], "no domain named 'ghost'"),
    (None, ["corpus", "remove", "ghost"], "no domain named 'ghost'"),
])
def test_corpus_errors(workspace, tmp_path, setup, args, needle):
    src = write_jsonl(tmp_path / "web.jsonl", synthetic_documents(1, 20, "xy "))
    tok = tmp_path / "tokenizer.json"
    tok.write_text("{ not a tokenizer")
    if setup == "dup":
        assert mixer_cli("corpus", "add", "web", str(src), workspace=workspace).returncode == 0
    args = [str(src) if a == "SRC" else str(tok) if a == "TOK" else a for a in args]
    assert needle in one_error_line(mixer_cli(*args, workspace=workspace))


@pytest.mark.parametrize("command", ["show", "remove"])
@pytest.mark.parametrize("name", ["../../victim", "/abs/victim", "-rf", ".hidden", "a b", "quote'd", "tab\there",
                                  "rtl\u202eevil", "new\nline"])
def test_domain_names_cannot_reach_outside_the_workspace(workspace, tmp_path, command, name):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "meta.json").write_text("{}")
    assert mixer_cli("info", workspace=workspace).returncode == 0
    target = name.replace("/abs/victim", str(victim))
    args = ["--", target] if target.startswith("-") else [target]
    assert "bad domain name" in one_error_line(mixer_cli("corpus", command, *args, workspace=workspace))
    assert (victim / "meta.json").read_text() == "{}"


def test_a_domain_folder_without_its_row_and_a_row_without_its_folder_are_reconciled(workspace, tmp_path):
    from mixer.corpus import AddRequest, add_corpus
    from mixer.workspace import open_workspace
    from store import upsert_domain

    ws = open_workspace(workspace)
    src = write_jsonl(tmp_path / "a.jsonl", synthetic_documents(1, 30, "ab "))
    meta = add_corpus(ws, AddRequest(name="orphan", sources=[src]))  # files only: as a kill -9 before the row
    ghost = dict(vars(meta), name="ghost")
    upsert_domain(ws.db_path, ghost)  # a row whose folder is gone: as a kill -9 inside a removal
    assert mixer_cli("corpus", "list", workspace=workspace).returncode == 0
    rows = mixer_cli("sql", "select name from domains order by name", "-f", "json", workspace=workspace)
    assert json.loads(rows.stdout) == [{"name": "orphan"}]


def test_removing_a_domain_that_searches_mixed_needs_force_and_names_them(workspace, tmp_path):
    from store import RunRecord, SearchRecord, create_search, write_runs

    for name, alphabet in (("web", "ab c"), ("code", "{};\n")):
        src = write_jsonl(tmp_path / f"{name}.jsonl", synthetic_documents(0, 30, alphabet))
        assert mixer_cli("corpus", "add", name, str(src), workspace=workspace).returncode == 0
    db = workspace / "mixer.duckdb"
    create_search(db, SearchRecord(id="s-1", name="mine", backend="random", evaluator="proxy"))
    write_runs(db, [RunRecord(id="mine/0000", search_id="s-1", mixture={"web": 0.3, "code": 0.7}, status="done")])
    refused = one_error_line(mixer_cli("corpus", "remove", "web", workspace=workspace))
    assert "domain 'web' is mixed by search(es) mine; use --force" in refused
    assert (workspace / "domains" / "web").is_dir()
    assert mixer_cli("corpus", "remove", "web", "--force", workspace=workspace).returncode == 0
    assert not (workspace / "domains" / "web").exists()


def test_export_warns_when_the_target_budget_would_repeat_a_domain_many_times(workspace, tmp_path):
    from store import SearchRecord, create_search, write_recommendation

    src = write_jsonl(tmp_path / "web.jsonl", synthetic_documents(0, 30, "ab c"))
    assert mixer_cli("corpus", "add", "web", str(src), workspace=workspace).returncode == 0
    src = write_jsonl(tmp_path / "code.jsonl", synthetic_documents(1, 30, "{};\n"))
    assert mixer_cli("corpus", "add", "code", str(src), workspace=workspace).returncode == 0
    db = workspace / "mixer.duckdb"
    create_search(db, SearchRecord(id="s-1", name="mine", backend="import", evaluator="table"))
    write_recommendation(db, "s-1", {"web": 0.5, "code": 0.5}, 1.0, 0.1, {})
    args = ["export", "mine", "-f", "olmo", "--path-template", "/d/{name}"]
    quiet = mixer_cli(*args, "--token-budget", "1000", workspace=workspace)
    assert quiet.returncode == 0 and "warning" not in quiet.stderr
    loud = mixer_cli(*args, "--token-budget", "1B", workspace=workspace)
    assert loud.returncode == 0 and "domain 'web'" in loud.stderr and "would be read" in loud.stderr
