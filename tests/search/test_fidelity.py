"""Fidelity bookkeeping: labels, inputs in [0, 1] with 1 at the target, costs, projection."""

import numpy as np
import pytest
import torch

from mixer import MixerError
from search.fidelity import Fidelities, parse_costs, proxy_fidelities, proxy_label, table_fidelities
from search.gp import MixtureGP


def test_proxy_labels_are_normalised():
    assert proxy_label("tiny:2M") == "tiny:2000000"
    assert proxy_label(proxy_label("1m:1.5k")) == "1m:1500"
    with pytest.raises(MixerError, match="expected PRESET:TOKENS"):
        proxy_label("tiny")


def test_proxy_inputs_and_flops_costs():
    fid = proxy_fidelities(["tiny:1000000", "tiny:4000000", "1m:4000000"], "1m:4000000", vocab_size=257)
    assert fid.input_names == ["size", "tokens"]
    assert fid.inputs_of("1m:4000000").tolist() == [1.0, 1.0]
    assert fid.inputs_of("tiny:1000000").tolist() == [0.0, 0.0]
    assert fid.inputs_of("tiny:4000000").tolist() == [0.0, 1.0]
    costs = fid.cost_table()
    assert costs["1m:4000000"] == 1.0
    assert costs["tiny:4000000"] == pytest.approx(4 * costs["tiny:1000000"])  # linear in tokens
    assert 0.02 < costs["tiny:4000000"] < 0.5                                  # smaller model, cheaper
    assert fid.cheapest() == "tiny:1000000"


def test_one_varying_dimension_gives_one_input():
    fid = proxy_fidelities(["tiny:1000000", "tiny:8000000"], "tiny:8000000", vocab_size=257)
    assert fid.input_names == ["tokens"] and fid.inputs[:, 0].tolist() == [0.0, 1.0]


@pytest.mark.parametrize("labels, target, message", [
    (["1m:1000000", "tiny:8000000"], "1m:1000000", "largest token budget; tiny:8000000 has more"),
    (["1m:1000000", "tiny:1000000"], "tiny:1000000", "largest model"),
    (["tiny:1000", "tiny:1000"], "tiny:1000", "lists tiny:1000 twice"),
    (["tiny:1000", "tiny:2000"], "tiny:5000", "not among the fidelities"),
])
def test_bad_proxy_fidelities(labels, target, message):
    with pytest.raises(MixerError, match=message):
        proxy_fidelities(labels, target, vocab_size=257)


def test_table_fidelities_need_costs_and_user_costs_win_over_measured():
    with pytest.raises(MixerError, match="need costs: give --fidelity-cost"):
        table_fidelities(["1m", "60m"], "60m", None)
    fid = table_fidelities(["1m", "60m"], "60m", {"1m": 1, "60m": 10})
    assert fid.inputs[:, 0].tolist() == [0.0, 1.0]
    assert fid.cost_table({"1m": 5.0, "60m": 6.0}) == {"1m": 1.0, "60m": 10.0}
    measured = table_fidelities(["1m", "60m"], "60m", None, {"1m": 2.0, "60m": 8.0})
    assert measured.cost_table({"1m": 3.0, "60m": 12.0}) == {"1m": 0.25, "60m": 1.0}
    assert measured.cost_table() == {"1m": 0.25, "60m": 1.0}   # the table's own costs, in target runs too
    with pytest.raises(MixerError, match="must have the largest cost"):
        table_fidelities(["1m", "60m"], "1m", {"1m": 1, "60m": 10})
    with pytest.raises(MixerError, match="no cost for 60m"):
        table_fidelities(["1m", "60m"], "60m", {"1m": 1})


def test_measured_costs_are_used_once_every_fidelity_has_one():
    fid = proxy_fidelities(["tiny:1000000", "tiny:2000000"], "tiny:2000000", vocab_size=257)
    assert fid.cost_table({"tiny:1000000": 3.0}) == fid.cost_table()          # one missing: FLOPs prior
    assert fid.cost_table({"tiny:1000000": 3.0, "tiny:2000000": 4.0}) == {"tiny:1000000": 0.75,
                                                                           "tiny:2000000": 1.0}


@pytest.mark.parametrize("text, message", [("1m", "expected LABEL=COST"), ("1m=0", "COST > 0"),
                                            ("1m=x", "COST > 0"), ("=3", "expected LABEL=COST")])
def test_bad_costs(text, message):
    with pytest.raises(MixerError, match=message):
        parse_costs([text])


def test_costs_parse_repeated_and_comma_separated():
    assert parse_costs(["1m=1,60m=10", "tiny:2M=0.5"]) == {"1m": 1.0, "60m": 10.0, "tiny:2M": 0.5}


def test_target_projection_and_cost_model():
    fid = table_fidelities(["1m", "60m"], "60m", {"1m": 1, "60m": 10})
    gp = MixtureGP(3, fid)
    Z = torch.tensor(gp.inputs(np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]]), ["1m", "60m"]))
    assert Z[:, 3].tolist() == [0.0, 1.0]
    projected = gp.project_to_target(Z)
    assert projected[:, 3].tolist() == [1.0, 1.0] and torch.equal(projected[:, :3], Z[:, :3])
    cost = gp.cost_model(fid.cost_table())
    assert cost.posterior(Z[:, None, :]).mean.squeeze().tolist() == [1.0, 10.0]


def test_single_fidelity_has_no_inputs():
    gp = MixtureGP(3, Fidelities.single("f"))
    X = np.array([[0.2, 0.3, 0.5]])
    assert np.array_equal(gp.inputs(X, ["f"]), X) and gp.n_inputs == 3


def test_restricted_fidelities_keep_the_target_and_their_rows():
    fid = table_fidelities(["1m", "20m", "60m"], "60m", {"1m": 1, "20m": 4, "60m": 10})
    two = fid.restricted(["20m"])
    assert two.labels == ["20m", "60m"] and two.costs.tolist() == [4.0, 10.0]
    assert two.inputs.tolist() == fid.inputs[1:].tolist()
    assert fid.restricted([]).labels == ["60m"] and not fid.restricted([]).multi
    assert fid.restricted(["1m", "20m"]) is fid
