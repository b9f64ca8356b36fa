import json

import pytest

from tests.conftest import mixer_cli, one_error_line, run_mixer, synthetic_documents, write_jsonl


@pytest.fixture
def two_domain_workspace(workspace, tmp_path):
    for i, (name, alphabet) in enumerate([("web", "abc "), ("code", "{}();\n")]):
        src = write_jsonl(tmp_path / f"{name}.jsonl", synthetic_documents(i, 80, alphabet))
        assert mixer_cli("corpus", "add", name, str(src), workspace=workspace).returncode == 0
    return workspace


@pytest.mark.slow  # starts Ray
def test_proxy_train_prints_losses_and_stores_the_run(two_domain_workspace):
    ws = two_domain_workspace
    result = run_mixer("proxy", "train", "--mixture", "web=0.7,code=0.3", "--tokens", "20k", "--seq-len", "64",
                       "--batch-size", "8", "--cpus", "1", workspace=ws)
    assert result.returncode == 0, result.stderr
    assert "web" in result.stdout and "code" in result.stdout and "tokens/s" in result.stdout
    rows = json.loads(mixer_cli("sql", "select status, search, mixture, final_values, target_value from run_summary",
                                "-f", "json", workspace=ws).stdout)
    assert len(rows) == 1 and rows[0]["status"] == "done" and rows[0]["search"] == "proxy-train-1"
    finals = rows[0]["final_values"]
    assert set(finals) == {"web", "code"}
    assert rows[0]["target_value"] == pytest.approx(sum(finals.values()) / 2)


def test_proxy_presets_lists_active_parameters():
    result = mixer_cli("proxy", "presets")
    assert result.returncode == 0 and "moe-1m" in result.stdout and "60m" in result.stdout


@pytest.mark.parametrize("args, needle", [
    (["--mixture", "web=0.5,nope=0.5"], "unknown domain(s) in mixture: nope"),
    (["--mixture", "web=1", "--preset", "huge"], "unknown proxy preset 'huge'"),
    (["--mixture", "web=1", "--tokens", "2X"], "bad count '2X'"),
    (["--mixture", "web=1", "--tokens", "100"], "less than one batch"),
    (["--mixture", "web=1", "--lr-schedule", "linear"], "--lr-schedule expects 'constant' | 'cosine', got 'linear'"),
    (["--mixture", "web=1", "--device", "nope"], "unknown device 'nope' (use auto, cpu, cuda or cuda:N)"),
    (["--mixture", "web=1", "--seed", "-3"], "--seed must be between 0 and 4294967295, got -3"),
])
def test_proxy_train_errors(two_domain_workspace, args, needle):
    assert needle in one_error_line(mixer_cli("proxy", "train", *args, workspace=two_domain_workspace))


def test_proxy_train_in_an_empty_workspace(workspace):
    assert "no domains" in one_error_line(mixer_cli("proxy", "train", "--mixture", "web=1", workspace=workspace))
