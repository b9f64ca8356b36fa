import json
import shlex

import pytest
import yaml

from mixer import MixerError, Mixture
from mixer.export import ExportContext, export_mixture

MIX = Mixture.parse("web=0.5,code=0.3,math=0.2,empty=0")
CTX = ExportContext(path_template="/data/{name}_text_document", domain_tokens={"web": 10**9, "code": 10**8, "math": 10**7},
                    token_budget=10**9)


def _weights_close(got: dict, expected: Mixture = MIX):
    want = {k: v for k, v in expected.as_dict().items() if v > 0}
    assert got.keys() == want.keys() and all(got[k] == pytest.approx(want[k]) for k in want)


def test_json_and_yaml_are_canonical():
    assert Mixture.from_json(export_mixture(MIX, "json")) == MIX
    assert Mixture.from_yaml(export_mixture(MIX, "yaml")) == MIX


def test_megatron_data_path_pairs():
    words = shlex.split(export_mixture(MIX, "megatron", CTX))
    pairs = dict(zip(words[1::2], map(float, words[0::2])))
    _weights_close({p.split("/")[-1].removesuffix("_text_document"): w for p, w in pairs.items()})


def test_olmo_source_mixture_with_repetition_caps():
    doc = yaml.safe_load(export_mixture(MIX, "olmo", CTX))["source_mixture_config"]
    sources = {s["source_name"]: s for s in doc["source_configs"]}
    _weights_close({k: s["target_ratio"] for k, s in sources.items()})
    assert sources["math"]["max_repetition_ratio"] == pytest.approx(0.2 * 10**9 / 10**7)
    assert sources["web"]["max_repetition_ratio"] == 1.0 and doc["max_tokens"] == 10**9


def test_hf_interleave_probabilities():
    doc = json.loads(export_mixture(MIX, "hf", CTX))
    _weights_close({p.split("/")[-1].removesuffix("_text_document"): w for p, w in zip(doc["datasets"], doc["probabilities"])})
    assert sum(doc["probabilities"]) == pytest.approx(1.0)


def test_streaming_streams_with_proportions():
    streams = yaml.safe_load(export_mixture(MIX, "streaming", CTX))["streams"]
    _weights_close({k: s["proportion"] for k, s in streams.items()})
    assert streams["web"]["local"] == "/data/web_text_document"


def test_unknown_format():
    with pytest.raises(MixerError, match="unknown export format 'csv'"):
        export_mixture(MIX, "csv")


@pytest.mark.parametrize("fmt", ["megatron", "olmo", "hf", "streaming"])
def test_framework_formats_need_the_users_paths(fmt):
    with pytest.raises(MixerError, match=f"--format {fmt} needs --path-template"):
        export_mixture(MIX, fmt, ExportContext())
    with pytest.raises(MixerError, match="has no {name}: all 3 domains would share one path"):
        export_mixture(MIX, fmt, ExportContext(path_template="/data/all"))
    for template in ("/data/{name}/{split}", "/d/{name}{name:>10000000}", "/d/{name}{name.__class__}", "/d/{{name}}"):
        with pytest.raises(MixerError, match="use {name} and no other braces"):   # never str.format on user text
            export_mixture(MIX, fmt, ExportContext(path_template=template))


def test_olmo_writes_no_budget_or_caps_it_was_not_given():
    doc = yaml.safe_load(export_mixture(MIX, "olmo", ExportContext(path_template="/d/{name}",
                                                                  domain_tokens={"web": 10, "code": 10, "math": 10})))
    config = doc["source_mixture_config"]
    assert "max_tokens" not in config and all(s["max_repetition_ratio"] == 1.0 for s in config["source_configs"])


@pytest.mark.slow  # runs Megatron's own parser
def test_megatron_reads_the_blend_back_with_its_own_parser():
    """The `--data-path` text, split as a shell would, parsed by Megatron-Core itself."""
    import shlex
    import warnings

    pytest.importorskip("megatron.core", reason="megatron-core (a test extra) is not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no Apex/Transformer Engine here: Megatron says so on import
        from megatron.core.datasets.utils import get_blend_from_list

    mixture = Mixture.normalized({"web": 0.5, "code book": 0.3, "math": 0.2, "empty": 0.0})
    text = export_mixture(mixture, "megatron", ExportContext(path_template="/data/{name}_text_document"))
    paths, weights = get_blend_from_list(shlex.split(text))
    assert dict(zip(paths, weights)) == pytest.approx({"/data/web_text_document": 0.5, "/data/math_text_document": 0.2,
                                                       "/data/code book_text_document": 0.3})
