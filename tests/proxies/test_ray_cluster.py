"""A real two-node Ray cluster on this machine: `ray start --head` plus a worker node,
joined over the loopback port; proxies run on the worker node."""

import json
import os
import secrets
import socket
import subprocess
import sys
import textwrap

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_node_cluster(tmp_path):
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    common = ["--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
    def ray_cli(*args):
        return subprocess.run([sys.executable, "-m", "ray.scripts.scripts", *args], env=env,
                              capture_output=True, text=True, timeout=180)
    head = ray_cli("start", "--head", "--port", str(port), "--num-cpus", "1", "--include-dashboard", "false", *common)
    assert head.returncode == 0, head.stderr[-2000:]
    try:
        worker = ray_cli("start", "--address", f"127.0.0.1:{port}", "--num-cpus", "2",
                         "--resources", json.dumps({"second_node": 1}), *common)
        assert worker.returncode == 0, worker.stderr[-2000:]
        yield f"127.0.0.1:{port}", env
    finally:
        ray_cli("stop", "--force")


def test_proxies_run_on_the_second_node(two_node_cluster, small_domains):
    address, env = two_node_cluster
    domains_dir = next(iter(small_domains.values())).path.parent
    driver = textwrap.dedent(f"""
        import json, ray
        from mixer import Mixture
        from proxies.runner import ProxyJob, ProxyRunner, RunnerConfig
        from proxies.train import TrainConfig
        runner = ProxyRunner({str(domains_dir)!r}, RunnerConfig(
            address={address!r}, cpus_per_run=1, resources={{"second_node": 0.5}}))
        jobs = [ProxyJob(f"r{{i}}", TrainConfig(preset="tiny", tokens=8192, seq_len=64, batch_size=8,
                         threads=1, seed=i, eval_tokens=2048), Mixture.parse("alpha=1"), ["alpha"])
                for i in range(2)]
        results = [r for _, r in runner.run(jobs, parallel=2)]
        second = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("second_node")]
        print(json.dumps({{"results": results, "second": second, "nodes": len(ray.nodes())}}))
    """)
    out = subprocess.run([sys.executable, "-c", driver], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["nodes"] == 2 and len(report["second"]) == 1
    assert [r["status"] for r in report["results"]] == ["done", "done"]
    assert {r["node_id"] for r in report["results"]} == set(report["second"])
