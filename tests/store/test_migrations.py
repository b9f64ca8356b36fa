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
