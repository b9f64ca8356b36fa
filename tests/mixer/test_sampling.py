import numpy as np
import pytest

from mixer import MixerError
from mixer.sampling import SamplerConfig, sample_mixtures

TOKENS = {"web": 5_000_000, "code": 1_000_000, "math": 200_000, "books": 50_000}


def test_samples_are_valid_distinct_and_reproducible():
    a = sample_mixtures(TOKENS, 200, seed=3)
    b = sample_mixtures(TOKENS, 200, seed=3)
    assert a == b and len({tuple(m.weights) for m in a}) == 200
    w = np.array([m.vector(list(TOKENS)) for m in a])
    assert np.allclose(w.sum(axis=1), 1) and (w >= 0).all()
    nonzero = w[w > 0]
    assert nonzero.min() >= 1e-3 * 0.99  # small weights zeroed
    assert (w == 0).mean() > 0.05  # sparse corners are explored
    assert sample_mixtures(TOKENS, 5, seed=4) != a[:5]


def test_repetition_cap_for_a_token_budget():
    cfg = SamplerConfig(token_budget=2_000_000, max_epochs=2.0)
    for m in sample_mixtures(TOKENS, 100, seed=0, cfg=cfg):
        for name, w in m.as_dict().items():
            assert w * 2_000_000 <= 2.0 * TOKENS[name] + 1e-6


def test_impossible_budget_is_refused():
    with pytest.raises(MixerError, match="repeats these domains"):
        sample_mixtures(TOKENS, 10, seed=0, cfg=SamplerConfig(token_budget=10**12, max_epochs=1))


def test_temperature_moves_the_centre_towards_uniform():
    flat = np.mean([m.vector(list(TOKENS)) for m in sample_mixtures(TOKENS, 400, 0, SamplerConfig(temperature=0.0))], axis=0)
    peaked = np.mean([m.vector(list(TOKENS)) for m in sample_mixtures(TOKENS, 400, 0, SamplerConfig(temperature=1.0))], axis=0)
    assert flat.max() - flat.min() < 0.15 and peaked[0] > 0.6
