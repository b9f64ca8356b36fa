"""A real two-node Ray cluster on this machine: `ray start --head` plus a worker node,
joined over the loopback port; proxies run on the worker node."""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time


import pytest


pytestmark = pytest.mark.slow  # starts Ray

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"no Ray head on port {port}")


@pytest.fixture
def two_node_cluster():
    """Head and worker as `ray start --block` processes in their own sessions, so teardown
    stops exactly these two nodes (never `ray stop`, which would stop every Ray on the machine)."""
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    common = ["--block", "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts", "start"]
    nodes = [subprocess.Popen(ray_cli + ["--head", "--port", str(port), "--num-cpus", "1",
                                         "--include-dashboard", "false", *common],
                              env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait_for_port(port)
        nodes.append(subprocess.Popen(ray_cli + ["--address", f"127.0.0.1:{port}", "--num-cpus", "2",
                                                 "--resources", json.dumps({"second_node": 1}), *common],
                                      env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        yield f"127.0.0.1:{port}", env
    finally:
        for node in reversed(nodes):
            os.killpg(node.pid, signal.SIGTERM)
        for node in nodes:
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)


def test_proxies_run_on_the_second_node(two_node_cluster, small_domains):
    address, env = two_node_cluster
    domains_dir = next(iter(small_domains.values())).path.parent
    driver = textwrap.dedent(f"""
        import json, ray, time
        from mixer import Mixture
        from proxies.runner import ProxyJob, ProxyRunner, RunnerConfig
        from proxies.train import TrainConfig
        deadline = time.time() + 120
        ray.init(address={address!r}, log_to_driver=False)
        while len([n for n in ray.nodes() if n["Alive"]]) < 2 and time.time() < deadline:
            time.sleep(0.5)
        runner = ProxyRunner({str(domains_dir)!r}, RunnerConfig(
            address={address!r}, cpus_per_run=1, resources={{"second_node": 0.5}}))
        jobs = [ProxyJob(f"r{{i}}", TrainConfig(preset="tiny", tokens=8192, seq_len=64, batch_size=8,
                         threads=1, seed=i, eval_tokens=2048), Mixture.parse("alpha=1"), ["alpha"])
                for i in range(2)]
        results = [r.to_dict() for _, r in runner.run(jobs, parallel=2)]
        second = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("second_node")]
        print(json.dumps({{"results": results, "second": second, "nodes": len(ray.nodes())}}))
    """)
    out = subprocess.run([sys.executable, "-c", driver], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(report["second"]) == 1
    assert [r["status"] for r in report["results"]] == ["done", "done"]
    assert {r["node_id"] for r in report["results"]} == set(report["second"])
