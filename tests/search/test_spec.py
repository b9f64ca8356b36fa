"""The nested search spec: defaults in one place, versioned JSON, unknown keys refused."""

import json

import pytest

from mixer import MixerError
from proxies import TrainConfig
from search.spec import SPEC_VERSION, Budget, ProxySpec, SearchSpec, nest_flat_settings


def test_json_round_trip_keeps_every_setting():
    spec = SearchSpec(name="s", backend="bayesopt", options={"n_candidates": 256}, seed=3,
                      budget=Budget(runs=7, parallel=3, max_cost=12.5),
                      proxy=ProxySpec(train=TrainConfig(preset="1m", tokens=3_000_000), domains=["a", "b"]))
    doc = json.loads(json.dumps(spec.to_json()))
    assert doc["version"] == SPEC_VERSION and doc["proxy"]["train"]["lr_schedule"] == "constant"
    assert SearchSpec.from_json(doc) == spec


def test_defaults_come_from_the_component_dataclasses():
    spec = SearchSpec.from_flat({"runs": 5})
    assert spec.budget == Budget(runs=5) and spec.proxy.train == TrainConfig()
    assert spec.fidelity_label == f"{TrainConfig.preset}:{TrainConfig.tokens}"


def test_unknown_keys_are_refused_not_dropped():
    doc = SearchSpec(name="s").to_json()
    doc["budget"]["runz"] = 3
    with pytest.raises(MixerError, match="search.budget has no option runz"):
        SearchSpec.from_json(doc)
    with pytest.raises(MixerError, match="unknown search setting 'tokenz'"):
        SearchSpec.from_flat({"tokenz": 3})


def test_a_version_1_flat_spec_is_upgraded():
    flat = {"name": "old", "backend": "regmix", "options": {}, "evaluator": "proxy", "target": "avg",
            "maximize": False, "runs": 9, "parallel": 2, "seed": 0, "max_cost": None, "fidelities": None,
            "target_fidelity": None, "fidelity_costs": {}, "validate": True, "preset": "tiny", "tokens": 16000,
            "seq_len": 64, "batch_size": 8, "lr": 0.003, "domains": None, "max_epochs": 4.0, "cpus_per_run": 1.0,
            "gpus_per_run": 0.0, "ray_address": None, "table": None}
    spec = SearchSpec.from_json(flat)
    assert spec.budget.runs == 9 and spec.validate and spec.proxy.train.seq_len == 64
    table = SearchSpec.from_json({**flat, "evaluator": "table", "table": "past", "validate": False})
    assert table.table.search == "past" and table.proxy is None


def test_proxy_fidelities_set_the_target_preset_and_tokens():
    spec = SearchSpec.from_flat({"fidelities": ["tiny:8k", "1m:16k"], "backend": "bayesopt"})
    assert spec.fidelity.labels == ["tiny:8000", "1m:16000"] and spec.fidelity.target == "1m:16000"
    assert (spec.proxy.train.preset, spec.proxy.train.tokens) == ("1m", 16000)


@pytest.mark.parametrize("flat, message", [
    ({"parallel": 0}, "budget.parallel must be at least 1"),
    ({"max_cost": -1}, "budget.max_cost must be positive"),
    ({"max_epochs": 0}, "proxy.max_epochs must be positive"),
    ({"target_fidelity": "tiny:8k"}, "fidelity.target needs fidelity.labels"),
    ({"runs": "many"}, "search.budget.runs expects int, got 'many'"),
    ({"evaluator": "table"}, "the table evaluator needs a table search"),
])
def test_bad_settings_name_the_python_argument(flat, message):
    with pytest.raises(MixerError, match=message):
        SearchSpec.from_flat(flat)


def test_nesting_only_carries_what_was_given():
    assert nest_flat_settings({"tokens": 5}) == {"version": SPEC_VERSION, "proxy": {"train": {"tokens": 5}}}


def test_a_stored_target_with_an_empty_item_still_loads():
    """`--target a=0.5,b=0.5,` was accepted before the CLI refused empty items: its search
    must still load (status, resume, best), read as it was stored."""
    spec = SearchSpec.from_flat({"target": "a=0.5,b=0.5,"})
    assert SearchSpec.from_json(spec.to_json()).target.weights == {"a": 0.5, "b": 0.5}
