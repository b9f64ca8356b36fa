"""The Ray runner on a real embedded local cluster."""

import os
from pathlib import Path

import pytest
import ray

from mixer import Mixture, MixerError
from proxies.runner import ProxyJob, ProxyRunner, RunnerConfig
from proxies.train import TrainConfig

pytestmark = pytest.mark.slow  # starts Ray

TINY = dict(preset="tiny", tokens=16_384, seq_len=64, batch_size=8, threads=1, eval_tokens=4096)


@pytest.fixture(scope="module")
def domains_dir(small_domains):
    return next(iter(small_domains.values())).path.parent


@pytest.fixture(scope="module")
def embedded_ray():
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _job(i, mixture="alpha=0.5,beta=0.5", **train):
    return ProxyJob(f"run-{i}", TrainConfig(**{**TINY, "seed": i, **train}), Mixture.parse(mixture),
                    ["alpha", "beta", "gamma"])


def test_four_proxies_run_in_parallel_and_stream_back(embedded_ray, domains_dir):
    runner = ProxyRunner(domains_dir, RunnerConfig(cpus_per_run=0.5))
    results = dict((job.run_id, r) for job, r in runner.run([_job(i) for i in range(4)], parallel=4))
    assert sorted(results) == [f"run-{i}" for i in range(4)]
    assert all(r.status == "done" and set(r.val_loss) == {"alpha", "beta", "gamma"} for r in results.values())
    spans = sorted((r.started_at, r.finished_at) for r in results.values())
    overlapping = sum(1 for s, _ in spans[1:] if s < spans[0][1])
    assert overlapping >= 2, spans  # they really ran at the same time
    assert len({round(r.val_loss["alpha"], 6) for r in results.values()}) == 4  # different seeds


def test_object_store_transport_gives_the_same_result(embedded_ray, domains_dir):
    by_path = ProxyRunner(domains_dir, RunnerConfig(domain_transport="path"))
    shipped = ProxyRunner(domains_dir, RunnerConfig(domain_transport="object_store"))
    (_, a), = list(by_path.run([_job(7)]))
    (_, b), = list(shipped.run([_job(7)]))
    assert a.status == b.status == "done"
    assert a.val_loss == pytest.approx(b.val_loss, abs=1e-6)


def test_deterministic_failures_come_back_failed(embedded_ray, domains_dir):
    runner = ProxyRunner(domains_dir, RunnerConfig(max_retries=3))
    results = {job.run_id: r for job, r in runner.run([_job(1, lr=float("inf")), _job(2, preset="nope")])}
    assert results["run-1"].status == "failed" and "diverged" in results["run-1"].error
    assert results["run-2"].status == "failed" and "unknown proxy preset" in results["run-2"].error


def test_worker_death_is_retried_with_the_runner_options(embedded_ray, tmp_path, domains_dir):
    marker = tmp_path / "attempts"

    def dies_once(path: str) -> int:
        attempts = Path(path)
        count = int(attempts.read_text()) + 1 if attempts.exists() else 1
        attempts.write_text(str(count))
        if count == 1:
            os._exit(1)  # the worker process dies
        return count

    options = ProxyRunner(domains_dir, RunnerConfig(max_retries=2)).task_options()
    assert ray.get(ray.remote(dies_once).options(**options).remote(str(marker))) == 2
    no_retry = {**options, "max_retries": 0}
    marker.unlink()
    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(ray.remote(dies_once).options(**no_retry).remote(str(marker)))


def test_swarms_pack_runs_of_one_config_and_give_each_its_own_result(embedded_ray, domains_dir):
    jobs = [_job(0, "alpha=1"), _job(1, "beta=1"), _job(2, "gamma=1"), _job(3, tokens=8192), _job(4, preset="moe-1m"),
            _job(5, "beta=1", preset="moe-1m")]
    runner = ProxyRunner(domains_dir, RunnerConfig(cpus_per_run=1, swarm=2))
    assert [[j.run_id for j in pack] for pack in runner._packs(jobs)] == [
        ["run-0", "run-1"], ["run-2"], ["run-3"], ["run-4", "run-5"]]  # same config in swarms of 2 (MoE too)
    swarmed = dict((job.run_id, r) for job, r in runner.run(jobs[:2], parallel=2))
    alone = dict((job.run_id, r) for job, r in ProxyRunner(domains_dir).run(jobs[:2], parallel=2))
    for run_id in ("run-0", "run-1"):
        assert swarmed[run_id].status == "done"
        assert swarmed[run_id].val_loss == pytest.approx(alone[run_id].val_loss, abs=2e-4)
    assert swarmed["run-0"].val_loss["alpha"] < swarmed["run-1"].val_loss["alpha"]


def test_a_run_no_node_can_hold_fails_at_once(embedded_ray, domains_dir):
    with pytest.raises(MixerError, match="a run asks for 64 CPU, but no node of the Ray cluster has more than 2"):
        ProxyRunner(domains_dir, RunnerConfig(cpus_per_run=64)).start()
    with pytest.raises(MixerError, match="a run asks for 1 GPU"):
        ProxyRunner(domains_dir, RunnerConfig(gpus_per_run=1)).start()


def test_capacity_is_what_the_cluster_runs_at_once(embedded_ray, domains_dir):
    assert ProxyRunner(domains_dir, RunnerConfig(cpus_per_run=1)).capacity() == 2
    assert ProxyRunner(domains_dir, RunnerConfig(cpus_per_run=0.5)).capacity() == 4
    assert ProxyRunner(domains_dir, RunnerConfig(cpus_per_run=1, swarm=4)).capacity() == 8


def test_default_swarm_is_one_on_cpu_and_the_measured_size_on_gpus():
    from proxies.presets import SWARM_PER_GPU, default_swarm

    assert default_swarm("1m", gpus_per_run=0, tokens_per_step=32 * 512) == 1
    assert default_swarm("moe-1m", gpus_per_run=1, tokens_per_step=32 * 512) == 1
    assert default_swarm("60m", gpus_per_run=1, tokens_per_step=32 * 512) == 1  # not measured: not swarmed
    assert default_swarm("1m", gpus_per_run=1, tokens_per_step=32 * 512) == SWARM_PER_GPU["1m"] == 64
    assert default_swarm("20m", gpus_per_run=1, tokens_per_step=32 * 512) == 16
    assert default_swarm("20m", gpus_per_run=1, tokens_per_step=64 * 1024) == 4  # 4x the activations per member
    assert default_swarm("1m", gpus_per_run=0.25, tokens_per_step=32 * 512) == 16  # a quarter of a GPU
    assert default_swarm("1m", gpus_per_run=1, tokens_per_step=10**9) == 1


def test_without_swarm_cpu_runs_stay_single_and_gpu_runs_are_packed(domains_dir):
    jobs = [_job(i, "alpha=1") for i in range(5)]
    assert [len(p) for p in ProxyRunner(domains_dir, RunnerConfig())._packs(jobs)] == [1] * 5
    assert [len(p) for p in ProxyRunner(domains_dir, RunnerConfig(gpus_per_run=1))._packs(jobs)] == [5]
