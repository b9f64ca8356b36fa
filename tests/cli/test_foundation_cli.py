"""The foundation commands, run as a user runs them (subprocess, real console entry)."""

import json

import pytest

from tests.conftest import needs_regmix, regmix_import_args, run_mixer


def _one_error_line(result):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [l for l in result.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@needs_regmix
def test_regmix_import_count_and_refused_drop(workspace):
    imported = run_mixer(*regmix_import_args(), workspace=workspace)
    assert imported.returncode == 0, imported.stderr
    assert "imported 512 runs" in imported.stdout
    count = run_mixer("sql", "select count(*) from run_summary", "--format", "csv", workspace=workspace)
    assert count.stdout.strip().splitlines() == ["count_star()", "512"]
    dropped = run_mixer("sql", "drop table runs", workspace=workspace)
    assert "read-only" in _one_error_line(dropped)
    again = run_mixer("sql", "select count(*) as n from runs", "--format", "json", workspace=workspace)
    assert json.loads(again.stdout) == [{"n": 512}]


def test_info_and_version(workspace):
    result = run_mixer("info", workspace=workspace)
    assert result.returncode == 0 and "schema version" in result.stdout and str(workspace) in result.stdout
    assert (workspace / "mixer.duckdb").exists()
    version = run_mixer("--version")
    assert version.returncode == 0 and version.stdout.startswith("mixer ")


def test_sql_writes_parquet(workspace, tmp_path):
    import pandas as pd
    out = tmp_path / "out.parquet"
    result = run_mixer("sql", "select 41 + 1 as answer", "--output", str(out), workspace=workspace)
    assert result.returncode == 0, result.stderr
    assert pd.read_parquet(out)["answer"].tolist() == [42]


def test_workspace_from_environment(tmp_path):
    ws = tmp_path / "from-env"
    result = run_mixer("info", env={"MIXER_WORKSPACE": str(ws)})
    assert result.returncode == 0 and (ws / "mixer.duckdb").exists()


@pytest.mark.parametrize("args, needle", [
    (["runs", "import", "/no/such.csv", "--search", "x", "--weight-prefix", "w_", "--metric-prefix", "m_"], "file not found"),
    (["sql", "select * from nowhere"], "SQL error"),
    (["sql", "select 1", "--format", "xml"], "unknown format"),
    (["runs", "list", "--search", "ghost"], "no search named 'ghost'"),
])
def test_user_errors_are_one_line_exit_2(workspace, args, needle):
    assert needle in _one_error_line(run_mixer(*args, workspace=workspace))


def test_debug_shows_the_traceback(workspace):
    result = run_mixer("--debug", "sql", "select * from nowhere", workspace=workspace)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_directory_that_is_not_a_workspace(tmp_path):
    (tmp_path / "somebody-else.txt").write_text("hello")
    assert "is not a mixer workspace" in _one_error_line(run_mixer("info", workspace=tmp_path))
    file_ws = tmp_path / "somebody-else.txt"
    assert "is a file" in _one_error_line(run_mixer("info", workspace=file_ws))
    assert (tmp_path / "somebody-else.txt").read_text() == "hello"


def test_corrupted_database(workspace):
    workspace.mkdir()
    (workspace / "mixer.duckdb").write_bytes(b"this is not a duckdb file" * 1000)
    assert "corrupted or not a DuckDB file" in _one_error_line(run_mixer("info", workspace=workspace))


def test_busy_database_from_the_cli(workspace):
    from tests.store.test_reads import _hold_lock
    assert run_mixer("info", workspace=workspace).returncode == 0
    writer = _hold_lock(workspace / "mixer.duckdb", seconds=8)
    try:
        assert "busy" in _one_error_line(run_mixer("sql", "select 1", "--wait", "0.5", workspace=workspace))
    finally:
        writer.kill()
        writer.wait()
