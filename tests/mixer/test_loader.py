import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from mixer import MixerError, Mixture, Schedule
from mixer.blend import max_prefix_deviation
from mixer.loader import LoaderConfig, MixtureLoader

NAMES = ("alpha", "beta", "gamma")
mixtures = st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3).filter(lambda w: sum(w) > 1e-2).map(
    lambda w: Mixture.normalized(dict(zip(NAMES, w))))


def _loader(domains, mixture, tokens=None, **kw):
    cfg = dict(seq_len=16, batch_size=4, seed=7)
    return MixtureLoader(domains, mixture, LoaderConfig(**{**cfg, **kw}), tokens=tokens)


def _take(loader, steps):
    return [next(loader) for _ in range(steps)]


def _ids(batches):
    return np.concatenate([b.domain.numpy() for b in batches])


def test_batches_are_windows_of_their_domain(small_domains):
    loader = _loader(small_domains, Mixture.parse("alpha=0.5,beta=0.3,gamma=0.2"))
    for batch in _take(loader, 20):
        assert batch.tokens.shape == (4, 17) and batch.tokens.dtype == torch.int64
        assert torch.equal(batch.inputs[:, 1:], batch.targets[:, :-1])
        for row, d in zip(batch.tokens.numpy(), batch.domain.numpy()):
            tokens = np.asarray(small_domains[batch.names[d]].tokens)
            windows = np.lib.stride_tricks.sliding_window_view(tokens, 17)[::16]
            assert (windows == row).all(axis=1).any()


@settings(max_examples=25, deadline=None)
@given(mixtures, st.integers(1, 6))
def test_blend_is_exact_at_every_prefix_and_deterministic(small_domains, mixture, batch_size):
    batches = _take(_loader(small_domains, mixture, batch_size=batch_size), 30)
    ids = _ids(batches)
    assert max_prefix_deviation(ids, mixture.vector(NAMES)) <= 1.0
    again = _take(_loader(small_domains, mixture, batch_size=batch_size), 30)
    assert all(torch.equal(a.tokens, b.tokens) for a, b in zip(batches, again))


@settings(max_examples=25, deadline=None)
@given(mixtures, mixtures, st.integers(0, 12), st.integers(0, 12))
def test_resume_equals_uninterrupted_also_across_a_weight_change(small_domains, first, second, k, change_at):
    def run(restore_at=None):
        loader, out = _loader(small_domains, first), []
        for step in range(24):
            if step == change_at:
                loader.set_mixture(second)
            if step == restore_at:
                state = loader.state_dict()
                loader = _loader(small_domains, Mixture.parse("alpha=1"))
                loader.load_state_dict(state)
            out.append(next(loader))
        return out

    reference, resumed = run(), run(restore_at=k)
    assert all(torch.equal(a.tokens, b.tokens) and torch.equal(a.domain, b.domain)
               for a, b in zip(reference, resumed))
    tail = _ids(reference[change_at:])
    assert max_prefix_deviation(tail, second.vector(NAMES)) <= 1.0


@settings(max_examples=20, deadline=None)
@given(mixtures, st.sampled_from([2, 3, 4]))
def test_ranks_partition_the_single_rank_stream(small_domains, mixture, world):
    single = _take(_loader(small_domains, mixture, batch_size=2 * world), 10)
    ranks = [_take(_loader(small_domains, mixture, batch_size=2, rank=r, world_size=world), 10)
             for r in range(world)]
    for step, whole in enumerate(single):
        union = torch.cat([ranks[r][step].tokens for r in range(world)])
        assert torch.equal(union, whole.tokens)


def test_schedule_switches_at_its_steps(small_domains):
    schedule = Schedule((0.0, 0.5), (Mixture.parse("alpha=1"), Mixture.parse("gamma=1")))
    batches = _take(_loader(small_domains, schedule, total_steps=10), 10)
    names = [{b.names[d] for d in b.domain.tolist()} for b in batches]
    assert names[:5] == [{"alpha"}] * 5 and names[5:] == [{"gamma"}] * 5
    with pytest.raises(MixerError, match="total_steps"):
        _loader(small_domains, schedule)


def test_epochs_and_new_permutation_per_epoch(small_domains):
    loader = _loader(small_domains, Mixture.parse("gamma=1"))
    n_windows = (small_domains["gamma"].meta.n_tokens - 1) // 16
    rows = torch.cat([b.tokens for b in _take(loader, n_windows // 2)])  # 2 windows per... 4 per batch
    total = len(rows)
    assert loader.epochs()["gamma"] == pytest.approx(total / n_windows)
    first_epoch = rows[:n_windows]
    assert len({tuple(r.tolist()) for r in first_epoch}) == n_windows  # no repeat inside an epoch
    assert not torch.equal(rows[:4], rows[n_windows:n_windows + 4])  # reshuffled next epoch


def test_state_of_another_loader_is_refused(small_domains):
    state = _loader(small_domains, Mixture.parse("alpha=1")).state_dict()
    with pytest.raises(MixerError, match="seq_len"):
        _loader(small_domains, Mixture.parse("alpha=1"), seq_len=32).load_state_dict(state)


def test_unknown_domain_and_too_long_sequences(small_domains):
    with pytest.raises(MixerError, match="does not have: web"):
        _loader(small_domains, Mixture.parse("alpha=0.5,web=0.5"))
    with pytest.raises(MixerError, match="fewer than"):
        _loader(small_domains, Mixture.parse("alpha=1"), seq_len=10**7)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("placement", ["device", "host"])
def test_cuda_path_matches_cpu(small_domains, placement):
    mixture = Mixture.parse("alpha=0.5,beta=0.3,gamma=0.2")
    cpu = _take(_loader(small_domains, mixture), 12)
    gpu = _loader(small_domains, mixture, device="cuda", placement=placement)
    for step, ref in enumerate(cpu):
        if step == 6:
            state = gpu.state_dict()
            gpu = _loader(small_domains, mixture, device="cuda", placement=placement)
            gpu.load_state_dict(state)
        b = next(gpu)
        assert b.tokens.is_cuda and torch.equal(b.tokens.cpu(), ref.tokens) and torch.equal(b.domain.cpu(), ref.domain)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_loaders_sharing_one_cuda_copy_match_their_cpu_streams(small_domains):
    from mixer.loader import DeviceTokens

    shared = DeviceTokens.place(small_domains, "cuda")
    streams = [(Mixture.parse("alpha=0.5,beta=0.3,gamma=0.2"), 1), (Mixture.parse("gamma=1"), 2)]
    gpus = [_loader(small_domains, m, seed=s, device="cuda", tokens=shared) for m, s in streams]
    cpus = [_loader(small_domains, m, seed=s) for m, s in streams]
    for _ in range(8):
        for gpu, cpu in zip(gpus, cpus):
            assert torch.equal(next(gpu).tokens.cpu(), next(cpu).tokens)
    other = {n: d for n, d in small_domains.items() if n != "gamma"}
    with pytest.raises(MixerError, match="other domains"):
        _loader(other, Mixture.parse("alpha=1"), device="cuda", tokens=shared)
