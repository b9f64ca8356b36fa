"""What `best` and `online start` say about an online run next to the static uniform run
of the same seed and budget."""

from search.views import explain, noise_lines, online_lines


def test_an_online_run_that_ends_worse_than_uniform_is_called_so():
    versus = {"run": "a1/uniform", "mixture": "uniform", "target": "avg", "static": 2.427, "online": 2.643}
    assert online_lines(versus) == [
        "warning: the online run ended at 2.6430 (avg), WORSE than the uniform mixture's run a1/uniform (2.4270; "
        "same seed and budget, one run each: a gap within the seed noise decides nothing): train the uniform "
        "mixture instead, or try other --option settings"]
    lines = explain({"predicted": None, "predicted_std": None, "evidence": {"rule": "online", "versus": versus}}, "avg")
    assert lines[-1].startswith("warning: the online run ended at 2.6430")


def test_an_online_run_that_beats_uniform_says_by_how_much_and_old_records_say_nothing():
    versus = {"run": "a1/uniform", "mixture": "uniform", "target": "docs", "static": 2.5, "online": 2.4}
    assert online_lines(versus) == ["the online run ended at 2.4000 (docs), 0.1000 better than the uniform mixture's "
                                    "run a1/uniform (2.5000; same seed and budget, one run each: a gap within the "
                                    "seed noise decides nothing)"]
    assert online_lines(None) == [] and online_lines({**versus, "static": None}) == []


def test_noise_lines_judge_the_gain_over_each_baseline_but_not_the_one_the_answer_is():
    evidence = {"rule": "baseline:no-clear-gain", "baseline": "uniform", "model_weak": False,
                "seed_noise": {"std": 0.01, "pairs": 2}, "predicted_gain_over": {"uniform": 0.0, "token-share": 0.05}}
    lines = noise_lines(evidence)
    assert lines[0] == "seed noise: 0.0100 (std of one run, from 2 replicate pairs)"
    assert lines[1] == "vs uniform: the answer is the uniform mixture"
    assert lines[2].startswith("vs token-share: predicted gain 0.0500 exceeds the noise on a difference of two runs")
    weak = noise_lines({**evidence, "model_weak": True})
    assert weak[1:] == ["predicted gains over the baselines: not judged, the model cannot be trusted yet"]
