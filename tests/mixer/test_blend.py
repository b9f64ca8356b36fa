import numpy as np
from hypothesis import given, settings, strategies as st

from mixer.blend import blend_block, blend_order, max_prefix_deviation

weights_strategy = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=24).filter(lambda w: sum(w) > 1e-3)


@settings(max_examples=200, deadline=None)
@given(weights_strategy, st.integers(1, 3000))
def test_every_prefix_is_within_one_sample(raw, n):
    w = np.asarray(raw) / sum(raw)
    order = blend_order(w, n)
    assert max_prefix_deviation(order, w) <= 1.0
    assert set(np.unique(order)) <= set(np.flatnonzero(w > 0))


@settings(max_examples=50, deadline=None)
@given(weights_strategy, st.integers(1, 500), st.integers(0, 500))
def test_blocks_continue_the_stream_exactly(raw, split, rest):
    w = np.asarray(raw) / sum(raw)
    whole = blend_order(w, split + rest)
    counts = np.zeros(len(w), dtype=np.int64)
    first = blend_block(w, counts, 0, split)
    second = blend_block(w, counts, split, rest)
    assert np.array_equal(np.concatenate([first, second]), whole)
    assert counts.sum() == split + rest


def test_long_stream_with_skewed_weights():
    w = np.array([0.7, 0.2, 0.05, 0.03, 0.015, 0.005])
    order = blend_order(w, 1_000_000)
    assert max_prefix_deviation(order, w) <= 1.0
    assert np.bincount(order, minlength=6).tolist() == [700000, 200000, 50000, 30000, 15000, 5000]


def test_iid_draws_drift_far_more():
    w = np.full(5, 0.2)
    iid = np.random.default_rng(0).choice(5, size=200_000, p=w)
    assert max_prefix_deviation(iid, w) > 50 * max_prefix_deviation(blend_order(w, 200_000), w)
