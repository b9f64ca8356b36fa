import subprocess
import sys
import textwrap
import time

import pytest

from mixer.errors import MixerError
from store import SearchRecord, create_search, run_sql


def _hold_lock(db, seconds: float) -> subprocess.Popen:
    """A second process that opens the database for writing and keeps it for `seconds`."""
    code = textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(db)!r})
        con.execute("BEGIN TRANSACTION")
        con.execute("UPDATE searches SET status = 'running'")
        print("locked", flush=True)
        time.sleep({seconds})
        con.execute("COMMIT")
        con.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


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


def test_reader_retries_until_the_writer_lets_go(db):
    writer = _hold_lock(db, seconds=1.5)
    try:
        start = time.monotonic()
        frame = run_sql(db, "SELECT status FROM searches", wait_s=20)
        waited = time.monotonic() - start
    finally:
        writer.wait(timeout=30)
    assert frame["status"].tolist() == ["running"]  # saw the writer's committed change
    assert waited >= 0.5


def test_reader_reports_busy_after_its_wait(db):
    writer = _hold_lock(db, seconds=6)
    try:
        start = time.monotonic()
        with pytest.raises(MixerError, match="busy") as info:
            run_sql(db, "SELECT 1", wait_s=0.8)
        assert 0.7 <= time.monotonic() - start < 5
        assert "--wait" in str(info.value)
    finally:
        writer.kill()
        writer.wait()
