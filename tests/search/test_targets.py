import pytest

from mixer import MixerError
from search.targets import Target

FINALS = {"web": 3.0, "code": 2.0, "math": 1.0}


def test_forms():
    assert Target("avg").value(FINALS) == pytest.approx(2.0)
    assert Target("avg").value(FINALS, averaged=["web", "code"]) == pytest.approx(2.5)
    assert Target("code").value(FINALS) == 2.0
    assert Target("web=0.5,math=2").value(FINALS) == pytest.approx(3.5)


def test_direction():
    assert Target("avg", maximize=True).loss(0.7) == -0.7 and Target("avg").loss(0.7) == 0.7


def test_unknown_names_fail_early():
    with pytest.raises(MixerError, match="unknown target nope"):
        Target("nope").check(FINALS)
    with pytest.raises(MixerError, match="bad target weight"):
        Target("web=x").weights
    Target("avg").check([])  # avg names nothing, so any run can be measured
    with pytest.raises(MixerError, match="unknown target code"):
        Target("web=0.5,code=0.5").check(["web"])


def test_weights_that_are_all_zero_are_refused():
    with pytest.raises(MixerError, match="target 'web=0,math=0' weighs every metric 0: nothing to minimise"):
        Target("web=0,math=0")
    assert Target("web=0,math=1").value(FINALS) == 1.0  # one zero among others is a choice, not a mistake


def test_worst_is_the_largest_of_the_named_losses():
    assert Target("worst").value(FINALS) == 3.0
    assert Target("worst").value(FINALS, averaged=["code", "math"]) == 2.0
    assert Target("worst:code,math").value(FINALS) == 2.0
    assert Target("worst:code,math").terms(["web"], [FINALS, FINALS]) == {"code": 1.0, "math": 1.0}
    with pytest.raises(MixerError, match="unknown target nope"):
        Target("worst:code,nope").check(FINALS)
    with pytest.raises(MixerError, match="cannot be maximised"):
        Target("worst", maximize=True)
    with pytest.raises(MixerError, match="names no loss"):
        Target("worst:")
