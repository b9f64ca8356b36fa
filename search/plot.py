"""`mixer plot`: best-so-far against runs, the recommended weights, predicted against
observed (out-of-fold predictions of the search's model)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mixer.outputs import check_output, write_atomically
from search.groups import expand
from search.targets import Target


def _pyplot(path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    check_output(path, (".png", ".pdf", ".svg"))
    return plt


def _save(fig, path: Path) -> None:
    plt = _pyplot(path)
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=120))
    plt.close(fig)


def plot_online(path: Path, name: str, weights: pd.DataFrame, losses: pd.DataFrame, end_tokens: float) -> None:
    """An online run: each domain's weight over tokens (stacked, a step from each stage
    on, the last to `end_tokens`) and the held-out losses the controller was told.
    Frames: tokens, name, value."""
    plt = _pyplot(path)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    stages = weights.pivot_table(index="tokens", columns="name", values="value").sort_index()
    x = np.append(stages.index.to_numpy(dtype=float), max(end_tokens, float(stages.index.max())))
    ys = [np.append(stages[c].to_numpy(), stages[c].iloc[-1]) for c in stages.columns]
    axes[0].stackplot(x, ys, labels=list(stages.columns), step="post")
    axes[0].set(xlabel="tokens", ylabel="weight", ylim=(0, 1), title=f"{name}: mixture over training")
    axes[0].legend(loc="upper right", fontsize="small")
    for domain, points in losses.sort_values("tokens").groupby("name"):
        axes[1].plot(points.tokens, points.value, ".-", label=domain)
    axes[1].set(xlabel="tokens", ylabel="held-out loss", title="losses the controller saw")
    if len(losses):
        axes[1].legend(fontsize="small")
    _save(fig, path)


@dataclass
class SearchPlot:
    """What `mixer plot SEARCH` draws.

    runs: one row per finished run in the order proposed: `value` (the target), `fidelity`,
    `label` ('' for the search's own runs; 'validation', 'uniform/0', ... for the others).
    observed, predicted [n]: the target-fidelity runs and their out-of-fold predictions
    (None: no model to show, `why_no_fit` says why)."""

    name: str
    target_label: str
    target: Target                  # its direction orders the best-so-far curve
    runs: pd.DataFrame
    target_fidelity: str | None
    recommended: dict[str, float] | None
    observed: np.ndarray
    predicted: np.ndarray | None
    why_no_fit: str = ""
    rec_predicted: float | None = None
    rec_std: float | None = None
    rec_observed: float | None = None         # the recommendation's measured value, when it has one
    rec_observed_by: str = "validation run"   # ... and the run that measured it
    interaction: pd.DataFrame | None = None   # a mixing law's t: column `law`, then one per domain
    groups: dict[str, dict[str, float]] | None = None   # the search's groups (search.groups): leaves shown


def plot_search(path: Path, view: SearchPlot) -> None:
    """Panels: every run (best so far at the target fidelity; other fidelities and the
    labelled extra runs marked apart), the recommended weights, predicted against observed
    with the recommendation's error bar, and a mixing law's interaction matrix."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot(path)
    panels = 3 if view.interaction is None else 4
    fig, axes = plt.subplots(1, panels, figsize=(5.4 * panels, 4.5))
    _runs_panel(axes[0], view)
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    if view.recommended:
        _mixture_panel(axes[1], view.recommended, view.groups or {})
    else:
        _empty(axes[1], "recommended mixture", "no recommendation yet")
    _fit_panel(axes[2], view)
    if view.interaction is not None:
        _heat_map(fig, axes[3], view.interaction)
    _save(fig, path)


def _mixture_panel(axis, recommended: dict[str, float], groups: dict[str, dict[str, float]]) -> None:
    """The recommended weights; with groups, as the leaves trained, coloured by group."""
    leaves = expand(recommended, groups)
    group_of = {leaf: g for g, shares in groups.items() for leaf in shares}
    names = sorted(leaves, key=leaves.get)
    colours = {g: f"C{i % 10}" for i, g in enumerate(groups)}
    axis.barh(names, [leaves[n] for n in names], color=[colours.get(group_of.get(n), "0.55") for n in names])
    if groups:
        from matplotlib.patches import Patch

        axis.legend(handles=[Patch(color=c, label=f"{g} {recommended.get(g, 0.0):.3g}") for g, c in colours.items()],
                    fontsize="small", title="group: weight", loc="lower right")
        axis.tick_params(axis="y", labelsize="small" if len(names) <= 24 else 5)
    axis.set(xlabel="weight", title="recommended mixture" + (" (leaves)" if groups else ""))


def _runs_panel(axis, view: SearchPlot) -> None:
    runs = view.runs.reset_index(drop=True)
    x = np.arange(len(runs))                      # run 0 is the search's first run (`NAME/0000`)
    own = (runs.label == "").to_numpy()
    at_target = own & ((runs.fidelity.fillna("") == view.target_fidelity).to_numpy()
                       if view.target_fidelity is not None else True)
    others = sorted(set(runs.fidelity[own & ~at_target].fillna("")))
    for fidelity in others:
        mine = own & (runs.fidelity.fillna("") == fidelity).to_numpy()
        axis.plot(x[mine], runs.value[mine], "s", alpha=0.5, label=f"run at {fidelity or 'no fidelity'}")
    target_name = f"run at {view.target_fidelity}" if others else "run"
    axis.plot(x[at_target], runs.value[at_target], "o", alpha=0.5, label=target_name)
    values = runs.value[at_target].to_numpy(dtype=float)
    if len(values):
        best = view.target.value_of(np.minimum.accumulate(view.target.loss(values)))
        axis.step(x[at_target], best, where="post", label="best so far")
    for label, group in runs[~own].groupby(runs.label[~own].str.split("/").str[0], sort=False):
        axis.plot(x[group.index], group.value, "D", label=label)
    axis.set(xlabel="run number (in the order proposed)", ylabel=view.target_label, title=f"{view.name}: runs")
    axis.legend(fontsize="small")


def _fit_panel(axis, view: SearchPlot) -> None:
    if view.predicted is None or not len(view.predicted):
        _empty(axis, "model fit", view.why_no_fit or "no model fitted")
        return
    axis.plot(view.observed, view.predicted, "o", alpha=0.6, label="run (out of fold)")
    values = np.concatenate([view.observed, view.predicted])
    if view.rec_predicted is not None:
        if view.rec_observed is not None:
            axis.errorbar(view.rec_observed, view.rec_predicted, yerr=view.rec_std or 0, fmt="*", ms=12, capsize=4,
                          color="C3", label=f"recommendation ({view.rec_observed_by})")
            values = np.append(values, [view.rec_observed, view.rec_predicted])
        else:
            axis.axhspan(view.rec_predicted - (view.rec_std or 0), view.rec_predicted + (view.rec_std or 0),
                         color="C3", alpha=0.2, label="recommendation: predicted ± std (not run)")
    lo, hi = float(values.min()), float(values.max())
    axis.plot([lo, hi], [lo, hi], "k--", lw=1)
    axis.set(xlabel=f"observed {view.target_label}", ylabel=f"predicted {view.target_label}", title="model fit")
    axis.legend(fontsize="small")


def _empty(axis, title: str, why: str) -> None:
    axis.set(title=title, xticks=[], yticks=[])
    axis.text(0.5, 0.5, why, ha="center", va="center", wrap=True, transform=axis.transAxes, color="0.4")


def _heat_map(fig, axis, interaction: pd.DataFrame) -> None:
    t = interaction.drop(columns="law").to_numpy(dtype=float)
    bound = float(np.abs(t).max()) or 1.0
    image = axis.imshow(t, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    axis.set_xticks(range(t.shape[1]), list(interaction.columns[1:]), rotation=45, ha="right")
    axis.set_yticks(range(t.shape[0]), list(interaction.law))
    axis.set(xlabel="domain weight", ylabel="law", title="mixing law t (blue: lowers it)")
    fig.colorbar(image, ax=axis)


def plot_transfer(path: Path, report) -> None:
    """Each mixture's mean at the small scale against the large one, error bars one std
    (search.transfer.TransferReport)."""
    plt = _pyplot(path)
    fig, axis = plt.subplots(figsize=(6.5, 5.5))
    for row in report.rows:
        axis.errorbar(row.small.mean, row.large.mean, xerr=row.small.std, yerr=row.large.std, fmt="o", capsize=3,
                      label=row.label)
    axis.set(xlabel=f"{report.small} (mean over seeds)", ylabel=f"{report.large} (mean over seeds)",
             title=f"{report.search}: Spearman {report.spearman:.2f}")
    axis.legend(fontsize="small")
    _save(fig, path)


def plot_clusters(path: Path, name: str, points: pd.DataFrame, clusters: pd.DataFrame) -> None:
    """A clustering: its sample in 2-D (the first two principal components of the
    embeddings), coloured by cluster; the legend names each cluster's domain and size.
    Frames: points (x, y, cluster), clusters (cluster, domain, docs, top_terms)."""
    plt = _pyplot(path)
    fig, axis = plt.subplots(figsize=(9, 6.5))
    colours = plt.get_cmap("tab20" if len(clusters) > 10 else "tab10")
    for row in clusters.itertuples():
        mine = points[points.cluster == row.cluster]
        terms = ", ".join(list(row.top_terms)[:3])
        axis.scatter(mine.x, mine.y, s=6, alpha=0.6, color=colours(row.cluster % colours.N),
                     label=f"{row.domain}: {row.docs:,} docs ({terms})")
    axis.set(xlabel="principal component 1", ylabel="principal component 2",
             title=f"clustering '{name}': {len(points):,} sample documents in 2-D")
    axis.legend(fontsize="small", markerscale=3, loc="best")
    _save(fig, path)
