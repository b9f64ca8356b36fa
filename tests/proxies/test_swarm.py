"""A swarm trains each member exactly as a single run with the same seed would."""

import dataclasses

import pytest

from mixer import Mixture, MixerError
from proxies import TrainConfig, train_proxy
from proxies.swarm import train_swarm

QUICK = dict(preset="tiny", seq_len=64, batch_size=8, threads=2, eval_tokens=4096, curve_eval_tokens=1024)
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


def test_a_mixture_of_experts_preset_is_refused(small_domains):
    with pytest.raises(MixerError, match="mixture of experts"):
        train_swarm(TrainConfig(tokens=4096, **{**QUICK, "preset": "moe-1m"}), small_domains, MEMBERS[:2])
