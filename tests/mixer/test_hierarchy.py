"""Domains within domains (mixer.hierarchy): names as paths, nested mixtures flattened to
leaves, and the loader's exact blend at the leaves of a nested mixture (issue 33)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mixer import MixerError, Mixture
from mixer.blend import max_prefix_deviation
from mixer.domain import list_domains, open_domains
from mixer.hierarchy import flatten, leaves, nodes_at_level, refuse_tree_clash
from mixer.ingest import IngestConfig, ingest_domain
from mixer.loader import LoaderConfig, MixtureLoader
from mixer.names import check_domain_name, domain_folder
from mixer.tokenizers import ByteTokenizer
from tests.conftest import synthetic_documents

NESTED = ["web/news", "web/blogs", "code"]


@pytest.fixture(scope="module")
def nested_domains(tmp_path_factory):
    root = tmp_path_factory.mktemp("nested")
    for i, (name, alphabet) in enumerate(zip(NESTED, ["abc ", "xyz\n", "0123"])):
        ingest_domain(root, name, synthetic_documents(i, 120, alphabet), ByteTokenizer(), IngestConfig(min_val_docs=4))
    return root


def test_a_nested_name_is_one_folder_and_lists_under_its_own_name(nested_domains):
    assert sorted(p.name for p in nested_domains.iterdir() if not p.name.startswith(".")) == [
        "code", "web+blogs", "web+news"]
    assert sorted(m.name for m in list_domains(nested_domains)) == sorted(NESTED)
    assert domain_folder("web/news/2024") == "web+news+2024"


@pytest.mark.parametrize("bad", ["web/", "/web", "web//news", "web/../x", "web/.hidden", "web/-x", "a+b",
                                 "x" * 201])
def test_bad_domain_paths_are_refused_in_one_line(bad):
    with pytest.raises(MixerError, match="bad domain name"):
        check_domain_name(bad)


def test_nested_shares_flatten_to_the_product_along_each_path():
    flat = flatten({"web": 0.6, "web/news": 0.25, "web/blogs": 0.75, "code": 0.4})
    assert flat == pytest.approx({"web/news": 0.15, "web/blogs": 0.45, "code": 0.4})
    deep = flatten({"a": 0.5, "a/x": 0.5, "a/x/1": 0.2, "a/x/2": 0.8, "a/y": 0.5, "b": 0.5})
    assert deep == pytest.approx({"a/x/1": 0.05, "a/x/2": 0.2, "a/y": 0.25, "b": 0.5})
    assert sum(deep.values()) == pytest.approx(1.0)
    assert flatten({"web/news": 0.5, "code": 0.5}) == {"web/news": 0.5, "code": 0.5}   # leaves only: as given


@pytest.mark.parametrize("shares, message", [
    ({"web": 0.5, "web/news": 0.5}, "shares under 'web' sum to 0.5, not 1"),          # a parent beside a leaf
    ({"web": 0.6, "web/news": 0.7, "web/blogs": 0.7, "code": 0.4}, "sum to 1.4"),
    ({"web": 0.6, "web/news": -0.5, "web/blogs": 1.5, "code": 0.4}, "not a finite non-negative number"),
    ({"web": 0.6, "web/news": "x", "code": 0.4}, "not a finite non-negative number"),
])
def test_a_mixture_naming_a_parent_without_shares_of_it_is_refused(shares, message):
    with pytest.raises(MixerError, match=message):
        flatten(shares)


def test_user_mixtures_nest_in_every_form():
    expected = {"code": 0.4, "web/blogs": 0.45, "web/news": 0.15}
    assert Mixture.parse("web=0.6,web/news=0.25,web/blogs=0.75,code=0.4").as_dict() == pytest.approx(expected)
    assert Mixture.from_yaml("mixture: {web: 0.6, web/news: 0.25, web/blogs: 0.75, code: 0.4}"
                             ).as_dict() == pytest.approx(expected)
    assert Mixture.from_json('{"web": 0.6, "web/news": 0.25, "web/blogs": 0.75, "code": 0.4}'
                             ).as_dict() == pytest.approx(expected)


def test_leaves_levels_and_a_parent_beside_its_child():
    names = ["web", "web/a", "web/b", "code", "m/x/1", "m/x/2", "m/y"]
    assert leaves(names) == ["web/a", "web/b", "code", "m/x/1", "m/x/2", "m/y"]
    assert nodes_at_level(names, 0) == {"web": ["web/a", "web/b"], "code": ["code"],
                                        "m": ["m/x/1", "m/x/2", "m/y"]}
    assert nodes_at_level(names, 1)["m/x"] == ["m/x/1", "m/x/2"]
    with pytest.raises(MixerError, match="no domains at level 3: the deepest of the search's domains is at level 2"):
        nodes_at_level(names, 3)
    with pytest.raises(MixerError, match="'web' is the parent of domain 'web/a', and a parent is a name"):
        refuse_tree_clash(["web"], ["code", "web/a"])
    with pytest.raises(MixerError, match="domain 'web/a' holds documents, so 'web/a/x' cannot lie under it"):
        refuse_tree_clash(["web/a/x"], ["web/a"])
    refuse_tree_clash(["web/a", "webs", "web-x"], ["web/a", "web/b"])   # a replacement, and prefixes that are no parents


@settings(max_examples=20, deadline=None)
@given(st.floats(0.05, 0.95), st.floats(0.0, 1.0), st.integers(1, 5))
def test_the_loader_realises_a_nested_mixture_exactly_at_its_leaves(nested_domains, web, news, batch_size):
    """Leaf counts stay within one sequence of the product weights at every prefix."""
    mixture = Mixture.parse(f"web={web},web/news={news},web/blogs={1 - news},code={1 - web}")
    domains = open_domains(nested_domains)
    loader = MixtureLoader(domains, mixture, LoaderConfig(seq_len=16, batch_size=batch_size, seed=3))
    ids = np.concatenate([next(loader).domain.numpy() for _ in range(40)])
    product = {"web/news": web * news, "web/blogs": web * (1 - news), "code": 1 - web}
    assert max_prefix_deviation(ids, np.array([product[n] for n in loader.names])) <= 1.0
