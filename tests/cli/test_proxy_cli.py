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


@pytest.mark.slow  # starts Ray twice
def test_proxy_train_with_a_runs_seeds_trains_that_search_run_again(two_domain_workspace):
    ws, quick = two_domain_workspace, ["--tokens", "20k", "--seq-len", "64", "--batch-size", "8"]
    assert run_mixer("search", "start", "--name", "s", "--backend", "random", "--runs", "1", "--seed", "7", *quick,
                     workspace=ws).returncode == 0
    run = json.loads(mixer_cli("sql", "select mixture, seed, init_seed, final_values from run_summary", "-f", "json",
                               workspace=ws).stdout)[0]
    assert run["init_seed"] == 7 and run["seed"] != 7  # a search's runs share its initialisation
    mixture = ",".join(f"{k}={v!r}" for k, v in run["mixture"].items())
    again = run_mixer("proxy", "train", "--mixture", mixture, "--seed", str(run["seed"]), "--init-seed", "7", *quick,
                      workspace=ws)
    assert again.returncode == 0, again.stderr
    rows = json.loads(mixer_cli("sql", "select init_seed, final_values from run_summary where search = 'proxy-train-1'",
                                "-f", "json", workspace=ws).stdout)
    assert rows[0]["init_seed"] == 7 and rows[0]["final_values"] == run["final_values"]  # the same run, exactly


@pytest.mark.slow  # runs the CLI in subprocesses
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


def test_proxy_train_on_cuda_without_a_device_is_refused_before_anything_is_stored(two_domain_workspace):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    result = mixer_cli("proxy", "train", "--mixture", "web=1", "--device", "cuda", workspace=two_domain_workspace)
    assert "--device cuda: this machine has no CUDA device" in one_error_line(result)
    assert json.loads(mixer_cli("search", "list", "-f", "json", workspace=two_domain_workspace).stdout) == []


def test_proxy_train_in_an_empty_workspace(workspace):
    assert "no domains" in one_error_line(mixer_cli("proxy", "train", "--mixture", "web=1", workspace=workspace))
