"""Seed-aware comparison: a win counts only beyond the seed std."""

from search.compare import SeedStats, verdict


def test_a_win_counts_only_beyond_the_seed_std():
    rec = SeedStats("recommended", (2.00, 2.01, 2.02))
    assert verdict(rec, SeedStats("uniform", (2.10, 2.11, 2.12))).significant
    close = verdict(rec, SeedStats("uniform", (2.01, 2.02, 2.03)))
    assert not close.significant and "NOT larger than the seed std" in close.sentence()
    worse = verdict(rec, SeedStats("uniform", (1.90, 1.91, 1.92)))
    assert not worse.significant and "does NOT beat" in worse.sentence()
    assert verdict(rec, SeedStats("uniform", (1.90, 1.91, 1.92)), maximize=True).significant
