import json

import pytest

from tests.cli.test_foundation_cli import _one_error_line
from tests.conftest import run_mixer
from tests.fixtures import synthetic_documents, write_jsonl


def test_add_list_show_remove(workspace, tmp_path):
    src = write_jsonl(tmp_path / "web.jsonl", synthetic_documents(0, 100, "ab c"))
    added = run_mixer("corpus", "add", "web", str(src), workspace=workspace)
    assert added.returncode == 0, added.stderr
    listed = run_mixer("corpus", "list", "--format", "json", workspace=workspace)
    (row,) = json.loads(listed.stdout)
    assert row["name"] == "web" and row["docs"] + row["val_docs"] == 100
    stored = run_mixer("sql", "select name, n_tokens from domains", "--format", "json", workspace=workspace)
    assert json.loads(stored.stdout) == [{"name": "web", "n_tokens": row["tokens"]}]
    shown = run_mixer("corpus", "show", "web", "--verify", workspace=workspace)
    assert json.loads(shown.stdout)["verified"] == "full"
    assert run_mixer("corpus", "remove", "web", workspace=workspace).returncode == 0
    assert json.loads(run_mixer("corpus", "list", "-f", "json", workspace=workspace).stdout) == []
    assert json.loads(run_mixer("sql", "select * from domains", "-f", "json", workspace=workspace).stdout) == []


@pytest.mark.parametrize("setup, args, needle", [
    (None, ["corpus", "add", "x", "/no/such/file.jsonl"], "source not found"),
    (None, ["corpus", "add", "x"], "exactly one"),
    (None, ["corpus", "add", "x", "--builtin", "java"], "unknown built-in source 'java'"),
    ("tok", ["corpus", "add", "x", "SRC", "--tokenizer", "TOK"], "cannot read tokenizer"),
    ("src", ["corpus", "add", "bad/name", "SRC"], "bad domain name"),
    ("dup", ["corpus", "add", "web", "SRC"], "already exists; use --replace"),
    (None, ["corpus", "show", "ghost"], "no domain named 'ghost'"),
    (None, ["corpus", "remove", "ghost"], "no domain named 'ghost'"),
])
def test_corpus_errors(workspace, tmp_path, setup, args, needle):
    src = write_jsonl(tmp_path / "web.jsonl", synthetic_documents(1, 20, "xy "))
    tok = tmp_path / "tokenizer.json"
    tok.write_text("{ not a tokenizer")
    if setup == "dup":
        assert run_mixer("corpus", "add", "web", str(src), workspace=workspace).returncode == 0
    args = [str(src) if a == "SRC" else str(tok) if a == "TOK" else a for a in args]
    assert needle in _one_error_line(run_mixer(*args, workspace=workspace))
