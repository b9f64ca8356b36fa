import math

import pytest

from mixer import Mixture
from proxies import TrainConfig, train_proxy

QUICK = dict(preset="tiny", seq_len=64, batch_size=8, threads=2, eval_tokens=8192)


@pytest.mark.slow  # trains hundreds of steps
def test_loss_falls_and_results_are_complete(small_domains):
    result = train_proxy(TrainConfig(tokens=120_000, **QUICK), small_domains,
                         Mixture.parse("alpha=0.4,beta=0.4,gamma=0.2"))
    assert result.status == "done" and result.steps == 120_000 // (8 * 64)
    first, last = result.curve[0], result.curve[-1]
    assert last.train_loss < first.train_loss and last.train_loss < 0.5 * math.log(257)
    assert all(a.val["alpha"] >= b.val["alpha"] - 0.05 for a, b in zip(result.curve, result.curve[1:]))
    assert set(result.val_loss) == {"alpha", "beta", "gamma"}
    assert all(math.isfinite(v) and v < math.log(257) for v in result.val_loss.values())
    assert result.tokens_per_s > 0 and result.params["non_embedding"] > 80_000
    assert result.epochs["alpha"] > 0


@pytest.mark.slow  # trains hundreds of steps
def test_per_domain_losses_follow_the_mixture(small_domains):
    cfg = TrainConfig(tokens=80_000, **QUICK)
    on_alpha = train_proxy(cfg, small_domains, Mixture.parse("alpha=1"))
    on_gamma = train_proxy(cfg, small_domains, Mixture.parse("gamma=1"))
    assert on_alpha.val_loss["alpha"] < on_gamma.val_loss["alpha"] - 0.3
    assert on_gamma.val_loss["gamma"] < on_alpha.val_loss["gamma"] - 0.3


@pytest.mark.slow  # trains hundreds of steps
def test_same_seed_same_losses(small_domains):
    cfg = TrainConfig(tokens=40_000, seed=3, **QUICK)
    a = train_proxy(cfg, small_domains, Mixture.parse("alpha=0.5,beta=0.5"))
    b = train_proxy(cfg, small_domains, Mixture.parse("alpha=0.5,beta=0.5"))
    assert all(abs(a.val_loss[k] - b.val_loss[k]) < 1e-6 for k in a.val_loss)
    c = train_proxy(TrainConfig(tokens=40_000, seed=4, **QUICK), small_domains, Mixture.parse("alpha=0.5,beta=0.5"))
    assert any(abs(a.val_loss[k] - c.val_loss[k]) > 1e-4 for k in a.val_loss)


def test_divergence_is_a_failed_run_with_a_reason(small_domains):
    result = train_proxy(TrainConfig(tokens=40_000, lr=float("inf"), **QUICK), small_domains, Mixture.parse("alpha=1"))
    assert result.status == "failed" and "diverged" in result.error
    assert result.val_loss == {}


@pytest.mark.slow  # trains hundreds of steps
def test_moe_keeps_every_expert_in_use_and_stats_add_up(small_domains):
    result = train_proxy(TrainConfig(tokens=120_000, **{**QUICK, "preset": "moe-tiny"}), small_domains,
                         Mixture.parse("alpha=0.4,beta=0.4,gamma=0.2"))
    assert result.status == "done"
    for domain, shares in result.moe["expert_share"].items():
        assert len(shares) == 8 and sum(shares) == pytest.approx(1.0)
    for load in result.moe["layer_load"]:
        assert sum(load) == pytest.approx(1.0) and min(load) > 0.02  # no dead expert
    assert result.params["active"] < 0.5 * result.params["total"]


@pytest.mark.slow  # trains a proxy (the fast lane stays under a minute)
def test_held_out_split_shorter_than_a_window_is_still_measured(small_domains):
    result = train_proxy(TrainConfig(tokens=8 * 1024 * 4, **{**QUICK, "seq_len": 1024}), small_domains,
                         Mixture.parse("alpha=1"))
    assert result.status == "done", result.error
    assert small_domains["gamma"].meta.n_val_tokens < 1025 and math.isfinite(result.val_loss["gamma"])


def test_init_seed_sets_the_initialisation_and_seed_the_data_order(small_domains):
    """With lr 0 the model stays as initialised: equal held-out losses mean equal weights."""
    still = dict(QUICK, tokens=2 * 8 * 64, lr=0.0)
    mix = Mixture.parse("alpha=0.5,beta=0.5")
    a = train_proxy(TrainConfig(seed=1, init_seed=7, **still), small_domains, mix)
    b = train_proxy(TrainConfig(seed=2, init_seed=7, **still), small_domains, mix)
    c = train_proxy(TrainConfig(seed=1, init_seed=8, **still), small_domains, mix)
    assert a.val_loss == b.val_loss and a.val_loss != c.val_loss
    assert a.curve[0].train_loss != b.curve[0].train_loss  # other data order, other batches


@pytest.mark.slow  # trains a proxy
def test_an_eval_only_set_is_measured_along_the_curve_and_never_sampled(small_domains, tmp_path):
    from mixer import MixerError
    from mixer.domain import Domain
    from mixer.ingest import IngestConfig, ingest_domain
    from mixer.loader import LoaderConfig, MixtureLoader
    from mixer.tokenizers import ByteTokenizer
    from tests.conftest import synthetic_documents

    ingest_domain(tmp_path, "target", synthetic_documents(9, 40, "abc 01"), ByteTokenizer(), IngestConfig(eval_only=True))
    target = Domain.open(tmp_path / "target")
    assert target.meta.eval_only and target.meta.n_tokens == 0 and target.meta.n_val_docs == 40
    domains = {n: small_domains[n] for n in ("alpha", "beta")}
    result = train_proxy(TrainConfig(tokens=8 * 64 * 12, eval_every=4, **QUICK), domains,
                         Mixture.parse("alpha=0.5,beta=0.5"), eval_sets={"target": target.val_tokens})
    assert set(result.val_loss) == {"alpha", "beta"} and set(result.eval_loss) == {"target"}
    assert [sorted(p.eval) for p in result.curve] == [["target"]] * 3 and math.isfinite(result.eval_loss["target"])
    assert set(result.epochs) == {"alpha", "beta"}   # what the loader drew from: the training domains only
    with pytest.raises(MixerError, match="target is an eval-only set: measured, never trained on"):
        MixtureLoader({**domains, "target": target}, Mixture.parse("alpha=1"), LoaderConfig(seq_len=64, batch_size=8))
