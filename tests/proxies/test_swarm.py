"""A swarm trains each member exactly as a single run with the same seed would."""

import dataclasses
import shutil

import numpy as np
import pytest
import torch

from mixer import Mixture
from proxies import TrainConfig, train_proxy
from proxies.presets import PRESETS
from proxies.swarm import COMPILE_MIN_STEPS, StepCompile, default_step_compile, train_swarm

QUICK = dict(preset="tiny", seq_len=64, batch_size=8, threads=2, eval_tokens=4096, curve_eval_tokens=1024,
             device="cpu")  # float32: exact agreement (CUDA trains in bf16: its own test, below)
MEMBERS = [(Mixture.parse("alpha=1"), 0), (Mixture.parse("alpha=0.5,beta=0.5"), 1),
           (Mixture.parse("beta=0.2,gamma=0.8"), 2), (Mixture.parse("alpha=0.3,beta=0.3,gamma=0.4"), 3)]


@pytest.mark.slow  # trains a swarm of 4 and 4 single runs
def test_a_swarm_of_four_matches_four_single_runs(small_domains):
    cfg = TrainConfig(tokens=16_384, eval_every=8, **QUICK)
    swarm = train_swarm(cfg, small_domains, MEMBERS)
    for (mixture, seed), member in zip(MEMBERS, swarm):
        alone = train_proxy(dataclasses.replace(cfg, seed=seed), small_domains, mixture)
        assert member.status == alone.status == "done" and member.steps == alone.steps
        assert member.epochs == pytest.approx(alone.epochs)
        assert [p.step for p in member.curve] == [p.step for p in alone.curve]
        for a, b in zip(member.curve, alone.curve):
            assert a.train_loss == pytest.approx(b.train_loss, abs=2e-4)
            assert a.val == pytest.approx(b.val, abs=2e-4)
        assert member.val_loss == pytest.approx(alone.val_loss, abs=2e-4)
    assert swarm[0].val_loss["alpha"] < swarm[2].val_loss["alpha"]  # the members really differ
    # each member is charged its share of the swarm's time (searches price fidelities by wall_s)
    assert swarm[0].wall_s == pytest.approx(swarm[0].tokens_trained / swarm[0].tokens_per_s / len(MEMBERS))


@pytest.mark.slow  # trains a swarm of 3 MoE proxies and 3 single runs
@pytest.mark.parametrize("shared_experts", [0, 1])
def test_a_mixture_of_experts_swarm_matches_single_runs_routing_included(small_domains, monkeypatch,
                                                                           shared_experts):
    """Member i's experts are numbered from i*E in one dispatch: it must route, train and
    report exactly as alone (its aux losses, expert shares and loads its own)."""
    monkeypatch.setitem(PRESETS, "moe-tiny", dataclasses.replace(PRESETS["moe-tiny"], n_shared_experts=shared_experts))
    cfg = TrainConfig(tokens=8192, eval_every=8, **{**QUICK, "preset": "moe-tiny"})
    members = MEMBERS[:3]
    swarm = train_swarm(cfg, small_domains, members)
    for (mixture, seed), member in zip(members, swarm):
        alone = train_proxy(dataclasses.replace(cfg, seed=seed), small_domains, mixture)
        assert member.status == alone.status == "done" and member.params == alone.params
        assert [p.train_loss for p in member.curve] == pytest.approx([p.train_loss for p in alone.curve], abs=1e-5)
        assert member.val_loss == pytest.approx(alone.val_loss, abs=1e-5)
        assert member.moe["expert_share"].keys() == alone.moe["expert_share"].keys()
        for domain, shares in alone.moe["expert_share"].items():  # the same tokens went to the same experts
            assert member.moe["expert_share"][domain] == pytest.approx(shares, abs=1e-6)
        assert np.allclose(member.moe["layer_load"], alone.moe["layer_load"], atol=1e-6)
    assert swarm[0].moe["layer_load"] != swarm[1].moe["layer_load"]  # each member's routing is its own


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mode", list(StepCompile))
def test_on_cuda_every_step_mode_matches_single_runs_within_bf16_noise(small_domains, mode):
    cfg = TrainConfig(tokens=4096, eval_every=4, **{**QUICK, "device": "cuda"})  # 8 steps: bf16 noise, no chaos yet
    swarm = train_swarm(cfg, small_domains, MEMBERS, mode)
    alone = [train_proxy(dataclasses.replace(cfg, seed=seed), small_domains, mixture) for mixture, seed in MEMBERS]
    assert all(member.status == "done" for member in swarm)
    val_diff = max(abs(a.val_loss[k] - b.val_loss[k]) for a, b in zip(swarm, alone) for k in a.val_loss)
    train_diff = max(abs(p.train_loss - q.train_loss) for a, b in zip(swarm, alone) for p, q in zip(a.curve, b.curve))
    assert val_diff < 0.02 and train_diff < 0.02, f"{mode.value}: val {val_diff:.4f}, train {train_diff:.4f}"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_a_moe_swarm_matches_single_runs_within_bf16_noise(small_domains):
    """One grouped GEMM over the members' 3 x 8 experts (`torch._grouped_mm`), as alone over 8."""
    cfg = TrainConfig(tokens=4096, eval_every=4, **{**QUICK, "device": "cuda", "preset": "moe-tiny"})
    swarm = train_swarm(cfg, small_domains, MEMBERS[:3])
    alone = [train_proxy(dataclasses.replace(cfg, seed=seed), small_domains, mixture) for mixture, seed in MEMBERS[:3]]
    assert all(member.status == "done" for member in swarm)
    val_diff = max(abs(a.val_loss[k] - b.val_loss[k]) for a, b in zip(swarm, alone) for k in a.val_loss)
    assert val_diff < 0.02, f"val {val_diff:.4f}"


@pytest.mark.slow  # compiles the step (about 10 s on CPU)
@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")), reason="torch.compile on CPU needs a C++ compiler")
def test_a_compiled_swarm_trains_exactly_as_the_eager_one(small_domains):
    cfg = TrainConfig(tokens=8192, eval_every=4, **QUICK)
    eager = train_swarm(cfg, small_domains, MEMBERS[:2], StepCompile.eager)
    compiled = train_swarm(cfg, small_domains, MEMBERS[:2], StepCompile.inductor)
    for a, b in zip(eager, compiled):
        assert [p.train_loss for p in a.curve] == pytest.approx([p.train_loss for p in b.curve], abs=1e-4)
        assert a.val_loss == pytest.approx(b.val_loss, abs=1e-4)


def test_the_step_is_compiled_by_default_only_where_it_was_measured_to_pay():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert default_step_compile(cuda, COMPILE_MIN_STEPS) is StepCompile.inductor
    assert default_step_compile(cuda, COMPILE_MIN_STEPS - 1) is StepCompile.eager  # compile time > time saved
    assert default_step_compile(cpu, 10 * COMPILE_MIN_STEPS) is StepCompile.eager  # every worker compiles again
    assert default_step_compile(cuda, 10 * COMPILE_MIN_STEPS, moe=True) is StepCompile.eager  # not measured
