"""Seed-aware comparison: a win counts only beyond the seed noise of the comparison."""

import pytest

from search.compare import SeedStats, verdict
from search.targets import Target

REC = SeedStats("recommended", (2.00, 2.05, 2.10))


def test_a_consistent_paired_win_counts_even_when_seeds_differ_a_lot():
    baseline = SeedStats("uniform", (2.02, 2.07, 2.13))  # each seed a little worse
    paired = verdict(REC, baseline)
    assert paired.significant and paired.gain == pytest.approx(0.0233, abs=1e-3)
    assert not verdict(REC, baseline, paired=False).significant  # unpaired: lost in the seed spread


def test_an_inconsistent_or_losing_comparison_does_not_count():
    mixed = verdict(REC, SeedStats("uniform", (2.06, 2.00, 2.16)))
    assert not mixed.significant and "NOT larger than the std of the per-seed differences" in mixed.sentence()
    worse = verdict(REC, SeedStats("uniform", (1.95, 2.00, 2.05)))
    assert not worse.significant and "does NOT beat" in worse.sentence()
    assert verdict(REC, SeedStats("uniform", (1.95, 2.00, 2.06)), Target(maximize=True)).significant


def test_a_recommendation_that_is_the_baseline_says_so_and_never_wins():
    same = verdict(REC, SeedStats("uniform", REC.values), same_mixture=True)
    assert not same.significant and same.gain == 0
    assert same.sentence() == "is the uniform mixture itself: no run of the search beat it by more than the runs' noise"
