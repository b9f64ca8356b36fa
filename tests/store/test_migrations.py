import duckdb
import pytest

from mixer.errors import MixerError
from store import SCHEMA_VERSION, migrate, open_db, schema_version
from store.db import first_row


def test_new_database_gets_every_migration(tmp_path):
    db = tmp_path / "m.duckdb"
    with open_db(db) as con:
        assert schema_version(con) == SCHEMA_VERSION
        versions = [r[0] for r in con.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()]
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_older_schema_is_upgraded_and_keeps_its_rows(tmp_path):
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    migrate(con, target=1)
    con.execute("INSERT INTO searches (id, name, backend, evaluator, status) VALUES ('s1', 'old', 'random', 'proxy', 'done')")
    con.execute("INSERT INTO runs (id, search_id, mixture, status) VALUES ('r1', 's1', MAP(['a','b'], [0.25, 0.75]), 'done')")
    con.execute("INSERT INTO metrics VALUES ('r1', 10, 100, 'val', 'a', 2.5)")
    con.close()

    with open_db(db) as con:  # opening for write upgrades
        assert schema_version(con) == SCHEMA_VERSION
        row = first_row(con, "SELECT run_id, mixture, final_values FROM run_summary")
    assert row == ("r1", {"a": 0.25, "b": 0.75}, {"a": 2.5})


def test_failed_migration_rolls_back_completely(tmp_path, monkeypatch):
    import store.db as dbmod
    db = tmp_path / "fail.duckdb"
    con = duckdb.connect(str(db))
    migrate(con, target=1)
    monkeypatch.setattr(dbmod, "MIGRATIONS", [dbmod.MIGRATIONS[0], ["CREATE TABLE ok (x INT)", "THIS IS NOT SQL"]])
    monkeypatch.setattr(dbmod, "SCHEMA_VERSION", 2)
    with pytest.raises(MixerError, match=r"from schema version 1 to \d+ failed, nothing was changed: Parser Error"):
        migrate(con)
    assert schema_version(con) == 1
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert "ok" not in tables and "runs" in tables
    con.close()


def test_newer_schema_is_refused(tmp_path):
    db = tmp_path / "new.duckdb"
    with open_db(db) as con:
        con.execute("INSERT INTO schema_version (version) VALUES (?)", [SCHEMA_VERSION + 5])
    with pytest.raises(MixerError, match="newer than this mixer"):
        with open_db(db):
            pass
    with pytest.raises(MixerError, match="newer than this mixer"):  # read-only commands too
        with open_db(db, read_only=True):
            pass


def test_roles_and_kinds_are_backfilled_from_what_version_5_stored(tmp_path):
    """Version 6 stores why each run was made and what each search is; an older workspace's
    ids, proposals and backends say it once, at the upgrade, and never again."""
    db = tmp_path / "v5.duckdb"
    con = duckdb.connect(str(db))
    migrate(con, target=5)
    searches = [("s1", "reg", "regmix", "proxy"), ("s2", "past", "import", "table"),
                ("s3", "aioli-1", "aioli", "online"), ("s4", "proxy-train-1", "random", "proxy")]
    for sid, name, backend, evaluator in searches:
        con.execute("INSERT INTO searches (id, name, backend, evaluator, status) VALUES (?, ?, ?, ?, 'done')",
                    [sid, name, backend, evaluator])
    runs = {"reg/0000": "s1", "reg/validation": "s1", "reg/replicate/0000/seed-1": "s1",
            "reg/transfer@1m:100/top-1/seed-0": "s1", "reg/uniform/seed-0": "s1", "reg/recommended/seed-0": "s1",
            "past/7": "s2", "aioli-1/online": "s3", "aioli-1/reference": "s3", "proxy-train-1/run": "s4"}
    for run_id, sid in runs.items():
        con.execute("INSERT INTO runs (id, search_id, mixture, status, target) VALUES (?, ?, MAP(['a'], [1.0]),"
                    " 'done', 2.5)", [run_id, sid])
    con.execute("INSERT INTO proposals (search_id, run_id, round, backend) VALUES ('s1', 'reg/0000', 0, 'regmix')")
    con.execute("INSERT INTO recommendations (search_id, mixture, evidence) VALUES ('s1', MAP(['a'], [1.0]),"
                " '{\"rule\": \"model\"}')")
    con.close()

    with open_db(db) as con:
        roles = dict(con.execute("SELECT run_id, role FROM run_summary").fetchall())
        kinds = dict(con.execute("SELECT name, kind FROM searches").fetchall())
        rule = first_row(con, "SELECT evidence->>'$.rule' FROM recommendations")[0]
        values = {r[0] for r in con.execute("SELECT target_value FROM runs").fetchall()}
    assert roles == {"reg/0000": "search", "reg/validation": "validation", "reg/replicate/0000/seed-1": "replicate",
                     "reg/transfer@1m:100/top-1/seed-0": "transfer", "reg/uniform/seed-0": "baseline",
                     "reg/recommended/seed-0": "validation", "past/7": "imported", "aioli-1/online": "online",
                     "aioli-1/reference": "baseline", "proxy-train-1/run": "train"}
    assert kinds == {"reg": "search", "past": "import", "aioli-1": "online", "proxy-train-1": "proxy-train"}
    assert rule == "model" and values == {2.5}


def test_the_stored_vocabularies_match_the_python_enums():
    from store.records import RunRole, SearchKind
    from store.schema import RUN_ROLES, SEARCH_KINDS

    assert RUN_ROLES == tuple(r.value for r in RunRole) and SEARCH_KINDS == tuple(k.value for k in SearchKind)


def test_one_vocabulary_for_runs_and_json_columns_typed_json(tmp_path):
    with open_db(tmp_path / "v.duckdb") as con:
        columns = {(t, c): kind for t, c, kind in con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns").fetchall()}
    for table in ("runs", "run_summary"):
        assert {(table, "run_id"), (table, "target_value"), (table, "role")} <= set(columns)
        assert (table, "id") not in columns and (table, "target") not in columns
    assert ("run_summary", "kind") in columns and ("searches", "kind") in columns
    for table, column in (("searches", "config"), ("recommendations", "evidence"), ("runs", "schedule")):
        assert columns[(table, column)] == "JSON", (table, column)


def test_a_read_of_an_older_workspace_upgrades_it_first(tmp_path):
    """Every reading command (`info`, `search list`, `runs list`, `best`...) opens the store
    read-only; on a workspace of an older mixer it upgrades the schema before reading."""
    from store import list_runs, list_searches

    db = tmp_path / "v5.duckdb"
    con = duckdb.connect(str(db))
    migrate(con, target=5)
    con.execute("INSERT INTO searches (id, name, backend, evaluator, status) VALUES ('s1', 'old', 'random', 'proxy', 'done')")
    con.execute("INSERT INTO runs (id, search_id, mixture, status, target) VALUES ('old/0000', 's1', MAP(['a'], [1.0]),"
                " 'done', 2.5)")
    con.close()
    assert list_searches(db).kind.tolist() == ["search"]
    assert list_runs(db)[["run_id", "role", "target_value"]].values.tolist() == [["old/0000", "baseline", 2.5]]
    with open_db(db, read_only=True) as con:
        assert schema_version(con) == SCHEMA_VERSION


def test_version_8_makes_every_existing_domain_its_version_1(tmp_path):
    db = tmp_path / "v7.duckdb"
    con = duckdb.connect(str(db))
    migrate(con, target=7)
    con.execute("INSERT INTO domains (name, tokenizer, n_docs, n_tokens, n_bytes, n_val_docs, n_val_tokens,"
                " content_hash, sources) VALUES ('web', '{}', 10, 1000, 4000, 1, 100, 'h-web', '[]')")
    con.close()
    with open_db(db) as con:
        rows = con.execute("SELECT name, version, content_hash, n_tokens, removed_at FROM domain_versions").fetchall()
    assert rows == [("web", 1, "h-web", 1000, None)]
