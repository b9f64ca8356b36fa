import duckdb
import pytest

from mixer.errors import MixerError
from store import MetricRow, RunRecord, SearchRecord, create_search, open_db, write_runs
from store.db import first_row


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "w.duckdb"
    create_search(path, SearchRecord(id="s1", name="demo", backend="random", evaluator="proxy"))
    return path


def _run(status="done", target=1.5):
    return RunRecord(id="r1", search_id="s1", mixture={"a": 0.4, "b": 0.6}, status=status,
                     fidelity="tiny:2M", preset="tiny", tokens=2_000_000, seed=0, target=target)


def _metrics():
    return [MetricRow("r1", 100, "val", "a", 1.25, tokens=1000), MetricRow("r1", 100, "val", "b", 1.75, tokens=1000),
            MetricRow("r1", 50, "val", "a", 3.0, tokens=500)]


def test_writing_a_finished_run_twice_never_duplicates_it(db):
    write_runs(db, [_run()], _metrics())
    write_runs(db, [_run()], _metrics())
    with open_db(db) as con:
        assert first_row(con, "SELECT count(*) FROM runs")[0] == 1
        assert first_row(con, "SELECT count(*) FROM metrics")[0] == 3
        row = first_row(con, "SELECT target_value, final_values FROM run_summary")
    assert row == (1.5, {"a": 1.25, "b": 1.75})  # final values come from the last step


def test_status_transitions_keep_start_time_and_set_finish(db):
    write_runs(db, [_run(status="running", target=None)])
    with open_db(db) as con:
        started, finished = first_row(con, "SELECT started_at, finished_at FROM runs")
    assert started is not None and finished is None
    write_runs(db, [_run()])
    with open_db(db) as con:
        started2, finished2 = first_row(con, "SELECT started_at, finished_at FROM runs")
    assert started2 == started and finished2 is not None


def test_a_failed_transaction_writes_nothing(db):
    bad = RunRecord(id="r2", search_id="s1", mixture={"a": 1.0}, status="exploded")  # CHECK fails
    with pytest.raises(duckdb.ConstraintException, match="CHECK constraint"):
        write_runs(db, [_run(), bad], _metrics())
    with open_db(db) as con:
        assert first_row(con, "SELECT count(*) FROM runs")[0] == 0
        assert first_row(con, "SELECT count(*) FROM metrics")[0] == 0


def test_search_names_are_unique(db):
    with pytest.raises(MixerError, match="already exists"):
        create_search(db, SearchRecord(id="s2", name="demo", backend="random", evaluator="proxy"))


def test_a_run_id_of_another_search_is_never_overwritten(db):
    write_runs(db, [_run()])
    create_search(db, SearchRecord(id="s9", name="other", backend="random", evaluator="proxy"))
    thief = RunRecord(id="r1", search_id="s9", mixture={"b": 1.0}, status="done")
    with pytest.raises(MixerError, match="run 'r1' belongs to another search"):
        write_runs(db, [thief])
    with open_db(db) as con:
        assert first_row(con, "SELECT search_id FROM runs WHERE run_id = 'r1'")[0] == "s1"


@pytest.mark.slow  # holds the lock for longer than a reader would wait
def test_a_driver_write_outwaits_a_slow_reader_and_says_it_waits(db):
    import time

    import store.db as store_db
    from store.db import DEFAULT_WAIT_S, WRITER_WAIT_S
    from tests.conftest import hold_lock

    notices = []
    store_db.set_wait_notice(notices.append)
    holder = hold_lock(db, seconds=DEFAULT_WAIT_S + 2)
    try:
        time.sleep(0.5)
        start = time.monotonic()
        write_runs(db, [_run()], wait_s=WRITER_WAIT_S)  # as the search driver writes a finished run
        waited = time.monotonic() - start
    finally:
        holder.wait(timeout=60)
        store_db.set_wait_notice(None)
    assert waited > DEFAULT_WAIT_S and len(notices) == 1 and "waiting for the database lock" in notices[0]
    with open_db(db, read_only=True) as con:
        assert first_row(con, "SELECT status FROM runs WHERE run_id = 'r1'") == ("done",)
