import math

import pytest
from hypothesis import given, strategies as st

from mixer import MixerError, Mixture, Schedule
from mixer.mixture import parse_count


def test_parse_and_canonical_round_trips():
    m = Mixture.parse("web=0.5, code=0.3,math=0.2")
    assert m.names == ("code", "math", "web") and m.as_dict()["web"] == 0.5
    assert Mixture.from_json(m.to_json()) == m
    assert Mixture.from_yaml(m.to_yaml()) == m
    assert Mixture.parse(str(m)) == m


@pytest.mark.parametrize("text, message", [
    ("a=0.5,b=-0.1,c=0.6", "negative"),
    ("a=nan,b=1", "not finite"),
    ("a=0.5,b=0.4", "sum to 0.9"),
    ("a=0.5,a=0.5", "names .a. twice"),
    ("a0.5", "bad mixture entry .a0.5.: expected NAME=WEIGHT"),
    ("a=half,b=0.5", "bad weight for domain 'a'"),
    ("", "at least one domain"),
])
def test_bad_mixtures_are_refused_with_the_reason(text, message):
    with pytest.raises(MixerError, match=message):
        Mixture.parse(text)


def test_unknown_domains_are_named():
    with pytest.raises(MixerError, match="unknown domain.*nope"):
        Mixture.parse("web=0.5,nope=0.5", known_domains=["web", "code"])


def test_tolerance_renormalises_within_1e6_only():
    m = Mixture({"a": 0.5 + 4e-7, "b": 0.5})
    assert math.isclose(sum(m.weights), 1.0, abs_tol=1e-15)
    with pytest.raises(MixerError):
        Mixture({"a": 0.5 + 2e-6, "b": 0.5})


@given(st.lists(st.floats(0.001, 10), min_size=1, max_size=12))
def test_normalized_always_gives_a_valid_mixture(raw):
    m = Mixture.normalized({f"d{i}": w for i, w in enumerate(raw)})
    assert math.isclose(sum(m.weights), 1.0, abs_tol=1e-12) and min(m.weights) >= 0


def test_schedule_pieces():
    a, b = Mixture.parse("x=1"), Mixture.parse("y=1")
    s = Schedule((0.0, 0.5), (a, b))
    assert s.at(0.0) == a and s.at(0.49) == a and s.at(0.5) == b and s.at(0.99) == b
    assert Schedule.from_dict(s.as_dict()) == s
    with pytest.raises(MixerError):
        Schedule((0.1,), (a,))
    with pytest.raises(MixerError):
        Schedule((0.0, 0.5, 0.5), (a, b, a))


@pytest.mark.parametrize("text", ["inf", "1e400", "-5", "2.5", "nan", "2X"])
def test_bad_counts_are_one_clear_error(text):
    with pytest.raises(MixerError, match=f"bad count '{text}'"):
        parse_count(text)
