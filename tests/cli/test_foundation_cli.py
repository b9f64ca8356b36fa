"""The foundation commands through the real `cli.app` entry (in-process where a subprocess adds
nothing; the environment variable, --debug and a lock held by another process need one)."""

import json

import pandas as pd
import pytest

from tests.conftest import REGMIX, hold_lock, mixer_cli, needs_regmix, one_error_line, regmix_import_args, run_mixer


@needs_regmix
def test_regmix_import_count_and_refused_drop(workspace):
    imported = mixer_cli(*regmix_import_args(), workspace=workspace)
    assert imported.returncode == 0, imported.stderr
    assert "imported 512 runs" in imported.stdout
    count = mixer_cli("sql", "select count(*) from run_summary", "--format", "csv", workspace=workspace)
    assert count.stdout.strip().splitlines() == ["count_star()", "512"]
    dropped = mixer_cli("sql", "drop table runs", workspace=workspace)
    assert "read-only" in one_error_line(dropped)
    again = mixer_cli("sql", "select count(*) as n from runs", "--format", "json", workspace=workspace)
    assert json.loads(again.stdout) == [{"n": 512}]


def test_info_and_version(workspace):
    result = mixer_cli("info", workspace=workspace)
    assert result.returncode == 0 and "schema version" in result.stdout and str(workspace) in result.stdout
    assert (workspace / "mixer.duckdb").exists()
    version = mixer_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("mixer ")


def test_sql_writes_parquet(workspace, tmp_path):
    import pandas as pd
    out = tmp_path / "out.parquet"
    result = mixer_cli("sql", "select 41 + 1 as answer", "--output", str(out), workspace=workspace)
    assert result.returncode == 0, result.stderr
    assert pd.read_parquet(out)["answer"].tolist() == [42]


@pytest.mark.slow
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
    assert needle in one_error_line(mixer_cli(*args, workspace=workspace))


@pytest.mark.slow
def test_debug_shows_the_traceback(workspace):
    result = run_mixer("--debug", "sql", "select * from nowhere", workspace=workspace)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_directory_that_is_not_a_workspace(tmp_path):
    (tmp_path / "somebody-else.txt").write_text("hello")
    assert "is not a mixer workspace" in one_error_line(mixer_cli("info", workspace=tmp_path))
    file_ws = tmp_path / "somebody-else.txt"
    assert "is a file" in one_error_line(mixer_cli("info", workspace=file_ws))
    assert (tmp_path / "somebody-else.txt").read_text() == "hello"


def test_corrupted_database(workspace):
    workspace.mkdir()
    (workspace / "mixer.duckdb").write_bytes(b"this is not a duckdb file" * 1000)
    assert "corrupted or not a DuckDB file" in one_error_line(mixer_cli("info", workspace=workspace))


@pytest.mark.slow
def test_busy_database_from_the_cli(workspace):
    assert run_mixer("info", workspace=workspace).returncode == 0
    writer = hold_lock(workspace / "mixer.duckdb", seconds=8)
    try:
        assert "busy" in one_error_line(run_mixer("sql", "select 1", "--wait", "0.5", workspace=workspace))
    finally:
        writer.kill()
        writer.wait()


@needs_regmix
@pytest.mark.slow  # cross-validates two regressors on 512 runs
def test_the_readme_import_can_be_predicted_from_as_published(tmp_path):
    from scipy.stats import spearmanr

    ws = tmp_path / "ws"
    assert mixer_cli(*regmix_import_args(), workspace=ws).returncode == 0
    result = mixer_cli("predict", "regmix-1m", "--mixtures", str(REGMIX / "test_mixture_1m.csv"),
                       "--weight-prefix", "train_the_pile_", "--id-column", "index", "-f", "json", workspace=ws)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    truth = pd.read_csv(REGMIX / "test_pile_loss_1m.csv").set_index("index")["metric/the_pile_pile_cc_val_loss"]
    assert len(rows) == len(truth) and all(r["predicted_std"] > 0 for r in rows)
    rho = spearmanr([r["predicted"] for r in rows], truth.loc[[r["index"] for r in rows]])[0]
    assert rho > 0.9
