"""Weight bounds (mixer.bounds): the box of --min/--max/--fix and the repetition caps, and
the sampler that draws inside it."""

import numpy as np
import pytest

from mixer import MixerError
from mixer.bounds import WeightBounds, WeightConstraints
from mixer.sampling import SamplerConfig, draw_within_bounds

NAMES = ["code", "web", "math", "books"]


def test_draws_respect_every_bound_and_a_fixed_weight_exactly():
    bounds = WeightBounds.of(NAMES, WeightConstraints(minimum={"code": 0.1}, maximum={"web": 0.4},
                                                      fixed={"books": 0.05}), caps=np.array([1.0, 1.0, 0.3, 1.0]))
    X = draw_within_bounds(np.array([0.1, 0.7, 0.1, 0.1]), 5_000, np.random.default_rng(0), SamplerConfig(), bounds)
    assert X.shape == (5_000, 4) and np.allclose(X.sum(axis=1), 1.0)
    assert (X[:, 0] >= 0.1 - 1e-9).all() and (X[:, 1] <= 0.4 + 1e-9).all() and (X[:, 2] <= 0.3 + 1e-9).all()
    assert np.allclose(X[:, 3], 0.05)
    assert X[:, 1].max() > 0.35 and X[:, 0].max() > 0.5   # the box is explored, not collapsed onto a point


def test_tight_bounds_do_not_stall_the_sampler():
    bounds = WeightBounds.of(NAMES, WeightConstraints(maximum={n: 0.26 for n in NAMES}))
    X = draw_within_bounds(np.full(4, 0.25), 1_000, np.random.default_rng(0), SamplerConfig(), bounds)
    assert len(X) == 1_000 and bounds.contains(X).all()


def test_projection_is_the_nearest_point_within_the_bounds():
    bounds = WeightBounds.of(NAMES, WeightConstraints(minimum={"math": 0.2}, maximum={"code": 0.3}))
    x = np.array([0.7, 0.3, 0.0, 0.0])
    p = bounds.project(x)[0]
    assert bounds.contains(p).all() and np.isclose(p.sum(), 1.0)
    draws = draw_within_bounds(np.full(4, 0.25), 20_000, np.random.default_rng(1), SamplerConfig(), bounds)
    assert np.linalg.norm(p - x) <= np.linalg.norm(draws - x, axis=1).min() + 1e-9
    assert np.allclose(bounds.project(p[None]), p)          # a point inside stays where it is


def test_binding_names_the_bounds_an_answer_sits_on():
    bounds = WeightBounds.of(NAMES, WeightConstraints(minimum={"math": 0.2}, fixed={"books": 0.1}),
                             caps=np.array([0.4, 1.0, 1.0, 1.0]))
    assert bounds.binding(np.array([0.4, 0.3, 0.2, 0.1])) == {
        "code": "repetition cap (--max-epochs) 0.4", "math": "--min 0.2", "books": "--fix 0.1"}
    assert bounds.binding(np.array([0.3, 0.35, 0.25, 0.1])) == {"books": "--fix 0.1"}


@pytest.mark.parametrize("constraints, caps, message", [
    (WeightConstraints(minimum={"code": 0.6, "web": 0.5}), None, "the --min and --fix weights sum to 1.1 > 1"),
    (WeightConstraints(maximum={n: 0.2 for n in NAMES}), None, "allow 0.8 in all < 1"),
    (WeightConstraints(fixed={"code": 0.5}), np.array([0.3, 1, 1, 1]),
     "--fix code=0.5 is above its repetition cap (--max-epochs) of 0.3"),
    (WeightConstraints(minimum={"web": 0.5}, maximum={"web": 0.4}), None, "--min web=0.5 is above its --max of 0.4"),
    (WeightConstraints(minimum={"rust": 0.1}), None, "--min/--max/--fix name rust, not a domain of the search"),
])
def test_infeasible_constraints_fail_in_one_line(constraints, caps, message):
    with pytest.raises(MixerError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        WeightBounds.of(NAMES, constraints, caps)


@pytest.mark.parametrize("kwargs, message", [
    (dict(fixed={"code": 1.5}), "--fix code=1.5: a weight must be between 0 and 1"),
    (dict(fixed={"code": 0.5}, minimum={"code": 0.1}), "a fixed weight takes no other bound")])
def test_a_bound_outside_zero_one_or_doubly_given_is_refused(kwargs, message):
    with pytest.raises(MixerError, match=message):
        WeightConstraints(**kwargs)


def test_bounds_that_leave_one_mixture_are_recognised():
    assert WeightBounds.of(NAMES, WeightConstraints(fixed={"code": 1.0})).single_mixture
    assert WeightBounds.of(NAMES, WeightConstraints(fixed={"code": 0.5, "web": 0.2, "math": 0.1})).single_mixture
    assert not WeightBounds.of(NAMES, WeightConstraints(fixed={"code": 0.5, "web": 0.2})).single_mixture
