"""search.plot: every panel shows data or says why not; fidelities and extra runs are told apart."""

import numpy as np
import pandas as pd
import pytest

import search.plot as plot_module
from search.plot import SearchPlot, plot_search
from search.targets import Target


@pytest.fixture
def figures(monkeypatch):
    saved = []
    monkeypatch.setattr(plot_module, "_save", lambda fig, path: saved.append(fig))
    return saved


def _view(**kwargs) -> SearchPlot:
    runs = pd.DataFrame({"value": [2.0, 1.9, 1.95, 1.7, 1.8, 1.75],
                         "fidelity": ["tiny", "tiny", "tiny", "1m", "1m", "1m"],
                         "label": ["", "", "", "", "", "validation"]})
    base = dict(name="s", target_label="avg held-out loss", target=Target(), runs=runs, target_fidelity="1m",
                recommended={"a": 0.6, "b": 0.4}, observed=np.array([1.7, 1.8]), predicted=None,
                why_no_fit="2 run(s) at the target fidelity: a fit needs 3")
    return SearchPlot(**{**base, **kwargs})


def test_fidelities_and_labelled_runs_each_get_a_legend_entry_and_integer_ticks(figures, tmp_path):
    plot_search(tmp_path / "x.png", _view())
    runs_axis = figures[0].axes[0]
    labels = runs_axis.get_legend_handles_labels()[1]
    assert labels == ["run at tiny", "run at 1m", "best so far", "validation"]
    assert runs_axis.get_ylabel() == "avg held-out loss"
    ticks = runs_axis.get_xticks()
    assert np.allclose(ticks, np.round(ticks))


def test_an_import_without_a_target_fidelity_plots_every_run_as_a_run(figures, tmp_path):
    plot_search(tmp_path / "x.png", _view(target_fidelity=None))
    assert figures[0].axes[0].get_legend_handles_labels()[1] == ["run", "best so far", "validation"]


def test_a_panel_without_data_says_why(figures, tmp_path):
    plot_search(tmp_path / "x.png", _view(recommended=None))
    fit_axis, weights_axis = figures[0].axes[2], figures[0].axes[1]
    assert "a fit needs 3" in " ".join(t.get_text() for t in fit_axis.texts)
    assert "no recommendation yet" in " ".join(t.get_text() for t in weights_axis.texts)


def test_the_recommendation_is_marked_on_the_fit_panel_with_its_error_bar(figures, tmp_path):
    plot_search(tmp_path / "x.png", _view(observed=np.array([1.7, 1.8, 1.9]), predicted=np.array([1.72, 1.79, 1.85]),
                                          rec_predicted=1.71, rec_std=0.02, rec_observed=1.75))
    assert figures[0].axes[2].get_ylabel() == "predicted avg held-out loss"
    labels = figures[0].axes[2].get_legend_handles_labels()[1]
    assert "recommendation (validation run)" in labels


def test_a_grouped_answer_is_drawn_as_its_leaves_coloured_by_group(figures, tmp_path):
    groups = {"web": {"web/a": 0.75, "web/b": 0.25}}
    plot_search(tmp_path / "x.png", _view(recommended={"web": 0.8, "code": 0.2}, groups=groups))
    axis = figures[0].axes[1]
    widths = {t.get_text(): bar.get_width() for t, bar in zip(axis.get_yticklabels(), axis.patches)}
    assert widths == pytest.approx({"web/a": 0.6, "web/b": 0.2, "code": 0.2})
    assert axis.get_legend().get_texts()[0].get_text() == "web 0.8"
