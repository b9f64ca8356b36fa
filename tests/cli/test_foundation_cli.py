"""The foundation commands through the real `cli.app` entry (in-process where a subprocess adds
nothing; the environment variable, --debug and a lock held by another process need one)."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REGMIX, ROOT, hold_lock, mixer_cli, needs_regmix, one_error_line, regmix_import_args, run_mixer


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
    (["corpus", "add", "x", "--bogus"], "No such option: --bogus (see `mixer corpus add --help`)"),  # Click's own
    (["plot"], "Missing option '--output' / '-o'. (see `mixer plot --help`)"),
    (["runs", "list", "-n", "abc"], "Invalid value for '--limit' / '-n'"),
    (["corpus", "add", "x", "a.jsonl", "--val-fraction", "nan"], "--val-fraction must be a finite number, got nan"),
    (["export", "ghost", "--token-budget", "0"], "--token-budget must be at least 1, got 0"),
    (["export", "ghost", "--token-budget", "-5"], "--token-budget: bad count '-5'"),
])
def test_user_errors_are_one_line_exit_2(workspace, args, needle):
    assert needle in one_error_line(mixer_cli(*args, workspace=workspace))


@pytest.mark.slow
def test_debug_shows_the_traceback(workspace):
    result = run_mixer("--debug", "sql", "select * from nowhere", workspace=workspace)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_an_empty_workspace_is_refused_not_taken_for_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "--workspace is empty" in one_error_line(mixer_cli("--workspace", "", "info"))
    for blank in ("", "  "):
        monkeypatch.setenv("MIXER_WORKSPACE", blank)
        assert "MIXER_WORKSPACE is empty" in one_error_line(mixer_cli("info"))
    assert not (tmp_path / ".mixer").exists()


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
    written = mixer_cli("predict", "regmix-1m", "--mixtures", str(REGMIX / "test_mixture_1m.csv"), "--weight-prefix",
                        "train_the_pile_", "--id-column", "index", "-o", str(tmp_path / "p.csv"), workspace=ws)
    assert written.returncode == 0 and pd.read_csv(tmp_path / "p.csv")["predicted"].tolist() == pytest.approx(
        [r["predicted"] for r in rows])


@pytest.mark.parametrize("args", [
    ["plot", "-o", "nodir/x.png"], ["plot", "--clusters", "c", "-o", "nodir/x.png"],
    ["export", "-o", "nodir/x.json"], ["sql", "select 1", "-o", "nodir/x.parquet"],
    ["predict", "--mixtures", "m.csv", "-o", "nodir/x.csv"],
])
def test_an_output_into_a_missing_folder_is_one_line_before_any_work(workspace, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    assert "folder nodir does not exist" in one_error_line(mixer_cli(*args, workspace=workspace))
    assert not (tmp_path / "nodir").exists()


@pytest.mark.slow  # runs the CLI in subprocesses
def test_reading_commands_import_neither_torch_nor_ray(tmp_path):
    """`search list|status`, `best`, `export`, `corpus list`, `sql`, `info`, `runs list` on a
    workspace with a finished search: all read the store, so none may pay for torch or Ray."""
    import textwrap

    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(3), 12)
    pd.DataFrame(X, columns=["w_a", "w_b", "w_c"]).assign(m_loss=X @ [1.0, 2.0, 3.0]).to_csv(tmp_path / "t.csv",
                                                                                           index=False)
    ws = tmp_path / "ws"
    assert mixer_cli("runs", "import", str(tmp_path / "t.csv"), "--search", "past", "--weight-prefix", "w_",
                     "--metric-prefix", "m_", "--target", "loss", workspace=ws).returncode == 0
    assert mixer_cli("search", "start", "--name", "s", "--evaluator", "table", "--table", "past", "--backend",
                     "random", "--runs", "4", workspace=ws).returncode == 0
    code = textwrap.dedent(f"""
        import sys
        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "ray"):
                    raise ImportError(f"{{name}} imported")
        sys.meta_path.insert(0, Refuse())
        import cli
        for args in (["search", "list"], ["search", "status", "s"], ["best", "s"], ["export", "s"],
                     ["corpus", "list"], ["sql", "select count(*) from runs"], ["info"], ["runs", "list"]):
            try:
                cli.app(["--workspace", {str(ws)!r}, *args])
            except SystemExit as exc:
                assert not exc.code, (args, exc.code)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_help_uses_conventional_placeholders_and_shows_defaults():
    text = mixer_cli("search", "start", "--help").stdout
    assert "--runs INTEGER" in text and "[default: 32]" in text and "--option KEY=VALUE" in text
    assert re.search(r"--maximize +Maximise", text)            # a flag takes no value
    assert "<" not in text and "{" not in text
    usage = mixer_cli("corpus", "cluster", "--help").stdout
    assert "Usage: mixer corpus cluster [OPTIONS] NAME SOURCES..." in usage
    assert "--clusters INTEGER" in usage and "--clusters NAME" in mixer_cli("plot", "--help").stdout  # a count; a name
    assert "Usage: mixer best [OPTIONS] [SEARCH]" in mixer_cli("best", "--help").stdout
    assert all(len(line) <= 80 for line in text.splitlines()) or "COLUMNS" in os.environ


def test_search_backends_lists_every_option_with_its_type_and_default():
    rows = json.loads(mixer_cli("search", "backends", "-f", "json").stdout)
    by_key = {(r["backend"], r["option"]): r for r in rows}
    assert by_key[("regmix", "n_models")]["type"] == "int" and by_key[("regmix", "n_models")]["default"] == "5"
    assert {r["backend"] for r in rows} >= {"regmix", "bayesopt", "mixing_law", "climb"}


@pytest.mark.slow
def test_ctrl_c_while_the_demo_builds_its_domains_says_so_and_exits_130(tmp_path):
    import signal
    import time

    ws = tmp_path / "ws"
    proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.app()", "--workspace", str(ws), "demo"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (ws / "domains").is_dir():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted before search 'demo-1' was created: nothing to resume" in out
    assert "Traceback" not in err
    assert not [p for p in (ws / "domains").iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.slow  # a subprocess
def test_output_into_a_closed_pipe_ends_quietly(workspace):
    """`mixer sql ... | head -0`: the reader is gone before mixer writes; exit 1, no traceback."""
    assert mixer_cli("info", workspace=workspace).returncode == 0
    process = subprocess.Popen([sys.executable, "-c", "import cli; cli.app()", "--workspace", str(workspace), "sql",
                                "select range AS n from range(100000)", "--format", "csv"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 1 and "Traceback" not in stderr and "Error" not in stderr, stderr


def test_ctrl_c_inside_a_duckdb_write_is_one_line_and_exit_130(workspace, tmp_path, monkeypatch):
    """DuckDB turns Ctrl-C during a query into `RuntimeError: Query interrupted` (a reviewer
    saw a 37-line traceback from `runs import`); its transaction is rolled back."""
    import store

    def interrupted(*args, **kwargs):
        raise RuntimeError("Query interrupted")

    def keyboard(*args, **kwargs):   # Ctrl-C while the CSV is read (Python code, not DuckDB)
        raise KeyboardInterrupt

    path = tmp_path / "t.csv"
    path.write_text("index,w_a,w_b,m_a\n1,0.5,0.5,1.0\n")
    for raised in (interrupted, keyboard):
        monkeypatch.setattr(store, "import_runs", raised)
        result = mixer_cli("runs", "import", str(path), "--search", "t", "--weight-prefix", "w_", "--metric-prefix",
                           "m_", workspace=workspace)
        assert result.returncode == 130 and "Traceback" not in result.stderr
        assert result.stderr.strip() == ("mixer: interrupted (a write it cut short was rolled back; one already "
                                         "committed stays)")
