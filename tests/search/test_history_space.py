"""History (the backends' only input) and the search space's candidate sampler."""

import numpy as np
import pandas as pd

from mixer.bounds import WeightBounds
from mixer.sampling import SamplerConfig
from search.backends.base import unused_pool
from search.history import History
from search.space import Pool, SearchSpace
from search.targets import Target


def _runs() -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": ["r0", "r1", "r2", "r3"], "status": ["done", "failed", "done", "running"],
        "mixture": [{"a": 1.0}, {"a": 0.5, "b": 0.5}, {"a": 0.25, "b": 0.75}, {"b": 1.0}],
        "fidelity": ["f", "f", "g", "f"], "pool_key": [None, None, "p2", "p3"],
        "target_value": [2.0, np.nan, 3.0, np.nan]})


def test_only_finished_runs_become_rows_in_minimise_orientation():
    h = History.from_runs(["a", "b"], _runs(), Target("score", maximize=True))
    assert h.run_ids == ["r0", "r2"] and h.y.tolist() == [-2.0, -3.0]
    assert h.X.tolist() == [[1.0, 0.0], [0.25, 0.75]] and h.pending_keys == ["p3"]
    at_g = h.at_fidelity("g")
    assert at_g.run_ids == ["r2"] and at_g.pending_keys == ["p3"]
    grown = h.append(np.array([0.5, 0.5]), -1.0, "f", "r4")
    assert len(grown) == 3 and len(h) == 2  # append returns a new History


def test_candidates_respect_the_caps_and_stay_near_a_centre():
    space = SearchSpace(["a", "b", "c"], prior=np.array([0.6, 0.3, 0.1]), sampler=SamplerConfig(),
                        bounds=WeightBounds.of(["a", "b", "c"], caps=np.array([1.0, 1.0, 0.2])))
    rng = np.random.default_rng(0)
    X = space.candidates(500, rng)
    assert X.shape == (500, 3) and np.allclose(X.sum(axis=1), 1) and (X[:, 2] <= 0.2 + 1e-12).all()
    centre = np.array([0.2, 0.7, 0.1])
    near = space.candidates(500, rng, centre=centre, strength=(50.0, 100.0))
    assert np.abs(near.mean(axis=0) - centre).max() < 0.05


def test_pool_entries_are_available_until_run_or_pending():
    space = SearchSpace(["a", "b", "c"], np.ones(3) / 3, pool=Pool(["k0", "k1", "k2"], np.eye(3), ["f"] * 3))
    history = History(["a", "b", "c"], np.eye(3)[[1]], np.ones(1), ["f"], ["r1"], ["k1"], pending_keys=["k2"])
    assert unused_pool(space, history).tolist() == [0]
