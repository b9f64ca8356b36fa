import pandas as pd
import pytest

from mixer.errors import MixerError
from store import ImportSpec, SearchRecord, create_search, import_runs, list_runs, run_sql
from tests.conftest import hold_lock


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "r.duckdb"
    create_search(path, SearchRecord(id="s1", name="demo", backend="random", evaluator="proxy"))
    return path


def test_statements_that_write_are_refused(db):
    for statement in ["DROP TABLE runs", "DELETE FROM searches", "INSERT INTO searches (id) VALUES ('x')",
                      "CREATE TABLE t (x INT)"]:
        with pytest.raises(MixerError, match="read-only"):
            run_sql(db, statement)
    assert run_sql(db, "SELECT count(*) AS n FROM searches")["n"].tolist() == [1]


def test_sql_errors_are_one_clear_line(db):
    with pytest.raises(MixerError, match="SQL error") as info:
        run_sql(db, "SELECT * FROM no_such_table")
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_reader_retries_until_the_writer_lets_go(db):
    writer = hold_lock(db, seconds=1.5)
    try:
        frame = run_sql(db, "SELECT status FROM searches", wait_s=20)
    finally:
        writer.wait(timeout=30)
    assert frame["status"].tolist() == ["running"]  # it waited: it saw the writer's committed change


@pytest.mark.slow
def test_reader_reports_busy_after_its_wait(db):
    writer = hold_lock(db, seconds=6)
    try:
        with pytest.raises(MixerError, match="busy") as info:
            run_sql(db, "SELECT 1", wait_s=0.8)
        assert writer.poll() is None  # gave up while the writer still held the lock
        assert "--wait" in str(info.value)
    finally:
        writer.kill()
        writer.wait()


@pytest.mark.parametrize("statement, message", [
    ("COPY (SELECT 1) TO 'OUT/x.csv'", "read-only: statement type COPY"),
    ("EXPORT DATABASE 'OUT/dump'", "read-only: statement type EXPORT"),
    ("INSTALL httpfs", "read-only: statement type LOAD"),
    ("SET threads = 1", "read-only: statement type SET"),
    ("ATTACH 'OUT/other.duckdb'", "read-only: statement type ATTACH"),
    ("SELECT 1; DROP TABLE runs", "exactly one statement, got 2"),
    ("SELECT * FROM read_csv('/etc/passwd')", "reads the store only"),
    ("SELECT * FROM read_text('/etc/hostname')", "reads the store only"),
    ("SELECT * FROM glob('/root/**')", "reads the store only"),
])
def test_sql_cannot_reach_the_machine(db, tmp_path, statement, message):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MixerError, match=message):
        run_sql(db, statement.replace("OUT", str(out)))
    assert list(out.iterdir()) == []
    assert run_sql(db, "SELECT count(*) AS n FROM searches")["n"].tolist() == [1]


def test_select_forms_still_work(db):
    assert run_sql(db, "WITH t AS (SELECT 2 AS x) SELECT x FROM t")["x"].tolist() == [2]
    assert "name" in set(run_sql(db, "DESCRIBE searches")["column_name"])
    assert "runs" in set(run_sql(db, "SHOW TABLES")["name"])


def test_search_list_best_is_of_the_searchs_own_runs(tmp_path):
    from store import RunRecord, RunRole, SearchRecord, create_search, list_searches, record_proposals, write_runs

    db = tmp_path / "m.duckdb"
    create_search(db, SearchRecord(id="s-1", name="s", backend="random", evaluator="proxy"))
    own = RunRecord(id="s/0000", search_id="s-1", mixture={"a": 1.0}, status="done", target=2.0)
    record_proposals(db, "s-1", "random", 0, [own])
    write_runs(db, [own, RunRecord(id="s/validation", search_id="s-1", mixture={"a": 1.0}, status="done", target=1.0,
                                   role=RunRole.validation)])
    row = list_searches(db).iloc[0]
    assert row.best == 2.0 and row.runs == 2


def test_search_list_best_is_at_the_target_fidelity(tmp_path):
    """A multi-fidelity search's cheap runs score on another scale: they are not its best."""
    from store import RunRecord, SearchRecord, create_search, list_searches, record_proposals, write_runs

    db = tmp_path / "m.duckdb"
    config = {"fidelity": {"labels": ["tiny:8000", "1m:16000"], "target": "1m:16000"}}
    create_search(db, SearchRecord(id="s-1", name="s", backend="bayesopt", evaluator="proxy", config=config))
    runs = [RunRecord(id="s/0000", search_id="s-1", mixture={"a": 1.0}, status="done", target=3.0, fidelity="1m:16000"),
            RunRecord(id="s/0001", search_id="s-1", mixture={"a": 1.0}, status="done", target=1.0, fidelity="tiny:8000")]
    record_proposals(db, "s-1", "bayesopt", 0, runs)
    write_runs(db, runs)
    assert list_searches(db).iloc[0].best == 3.0


def test_runs_list_orders_an_imports_numbered_ids_by_number(tmp_path):
    """An import stores its rows at one timestamp; `t/10` must not sort between `t/1` and `t/2`."""
    frame = pd.DataFrame({"id": range(1, 13), "w_a": [0.5] * 12, "w_b": [0.5] * 12, "m_a": [1.0] * 12})
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    db = tmp_path / "i.duckdb"
    import_runs(db, ImportSpec(mixtures_csv=path, search="t", id_column="id", weight_prefix="w_",
                               metric_prefix="m_"))
    assert list_runs(db)["run_id"].tolist() == [f"t/{i}" for i in range(12, 0, -1)]


def test_a_query_in_the_old_column_names_says_what_they_became(db):
    with pytest.raises(MixerError, match=r"schema 6 renamed runs.id to run_id"):
        run_sql(db, "SELECT id FROM runs")
    with pytest.raises(MixerError, match=r"schema 6 renamed runs.target to target_value"):
        run_sql(db, "SELECT target FROM runs")


def test_json_columns_are_written_as_the_values_they_hold(db, capsys):
    import json

    from mixer.render import write_frame

    frame = run_sql(db, "SELECT config, config->>'$.x' AS x FROM searches")
    assert frame.attrs["json_columns"] == ["config"]
    write_frame(frame, "json", None)
    assert json.loads(capsys.readouterr().out) == [{"config": {}, "x": None}]
