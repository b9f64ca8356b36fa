"""`mixer transfer`'s plan and report, without training: a recommendation that is a
baseline is trained once and reported as that baseline."""

import numpy as np
import pytest

from mixer.mixture import Mixture
from mixer.workspace import open_workspace
from search.compare import SeedStats
from search.space import SearchSpace
from search.state import SearchSetup
from search.targets import Target
from search.transfer import MixtureScales, TransferRequest, plan, report
from store import SearchRecord, create_search, write_recommendation


def test_a_recommendation_that_is_a_baseline_is_planned_once(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    record = SearchRecord(id="s-1", name="s", backend="regmix", evaluator="proxy", status="done")
    create_search(ws.db_path, record)
    write_recommendation(ws.db_path, record.id, {"a": 0.5, "b": 0.5}, None, None, {})
    space = SearchSpace(["a", "b"], prior=np.full(2, 0.5),
                        baselines={"uniform": np.full(2, 0.5), "token-share": np.array([0.8, 0.2])})
    setup = SearchSetup(record, None, space, ["a", "b"], Target(), ["a", "b"])
    assert list(plan(ws, setup, TransferRequest("tiny:1000", top=0))) == ["recommended", "token-share"]


def test_the_report_names_a_baseline_that_is_the_recommendation():
    rows = [MixtureScales(label, Mixture({"a": 0.5, "b": 0.5}), SeedStats(label, (2.0, 2.1)),
                          SeedStats(label, (1.5, 1.6))) for label in ("recommended", "token-share")]
    rows[1] = MixtureScales("token-share", Mixture({"a": 0.8, "b": 0.2}), SeedStats("token-share", (2.2, 2.3)),
                            SeedStats("token-share", (1.7, 1.8)))
    out = report("s", "tiny:1000", "tiny:4000", rows, Target(), ["token-share"], same_as=["uniform"])
    verdicts = {c.verdict.baseline: c.verdict for c in out.comparisons}
    assert verdicts["uniform"].same_mixture and not verdicts["token-share"].same_mixture
    assert verdicts["token-share"].gain > 0


def test_the_seeds_a_transfer_needs_follow_the_noise_against_the_spread():
    from search.transfer import MAX_SEEDS, seeds_needed

    assert seeds_needed(0.01, 0.09) == 2                       # means clear of each other with two seeds
    assert seeds_needed(0.03, 0.045) == 4                      # 9 * (0.03 / 0.045)^2 = 4
    assert seeds_needed(0.05, 0.02) == MAX_SEEDS and seeds_needed(0.01, 0.0) == MAX_SEEDS


@pytest.mark.slow  # a transfer report end to end (the fast lane stays under a minute)
def test_after_training_the_report_asks_for_the_seeds_the_larger_scales_own_noise_needs():
    def row(i: int, large: tuple[float, ...]) -> MixtureScales:
        return MixtureScales(f"m{i}", Mixture({"a": 0.1 * (i + 1), "b": 1 - 0.1 * (i + 1)}),
                             SeedStats(f"m{i}", (2.0 + 0.1 * i, 2.01 + 0.1 * i)), SeedStats(f"m{i}", large))

    quiet = report("s", "tiny:1000", "1m:1000", [row(i, (1.5 + 0.1 * i, 1.51 + 0.1 * i)) for i in range(6)],
                   Target(), [])
    assert quiet.seeds == 2 and quiet.large_seeds_wanted <= 2
    # each mixture's two seeds 0.2 apart (std 0.141) against means 0.1 apart (spread 0.187): 9 x (0.141 / 0.187)^2
    noisy = report("s", "tiny:1000", "1m:1000", [row(i, (1.4 + 0.1 * i, 1.6 + 0.1 * i)) for i in range(6)],
                   Target(), [])
    assert noisy.large_seeds_wanted == 6
