"""`mixer plot`: best-so-far against runs, the recommended weights, predicted against
observed (out-of-fold predictions of the search's model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mixer.errors import MixerError


def _pyplot(path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if path.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise MixerError(f"-o {path}: use a .png, .pdf or .svg file name")
    return plt


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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_search(path: Path, name: str, targets: list[float], maximize: bool, recommended: dict[str, float] | None,
                observed: np.ndarray, predicted: np.ndarray | None, interaction: pd.DataFrame | None = None) -> None:
    """`interaction`: a mixing law's t (column `law`, then one column per domain), drawn as
    a heat map in a fourth panel as olmix does."""
    plt = _pyplot(path)
    panels = 3 if interaction is None else 4
    fig, axes = plt.subplots(1, panels, figsize=(5.4 * panels, 4.5))
    values = np.asarray(targets, dtype=float)
    best = np.maximum.accumulate(values) if maximize else np.minimum.accumulate(values)
    axes[0].plot(np.arange(1, len(values) + 1), values, ".", alpha=0.4, label="run")
    axes[0].plot(np.arange(1, len(values) + 1), best, "-", label="best so far")
    axes[0].set(xlabel="runs", ylabel="target", title=f"{name}: best so far")
    axes[0].legend()
    if recommended:
        names = sorted(recommended, key=recommended.get, reverse=True)
        axes[1].barh(names[::-1], [recommended[n] for n in names[::-1]])
        axes[1].set(xlabel="weight", title="recommended mixture")
    if predicted is not None and len(predicted):
        axes[2].plot(observed, predicted, "o", alpha=0.6)
        lo, hi = float(min(observed.min(), predicted.min())), float(max(observed.max(), predicted.max()))
        axes[2].plot([lo, hi], [lo, hi], "k--", lw=1)
        axes[2].set(xlabel="observed", ylabel="predicted (out of fold)", title="model fit")
    if interaction is not None:
        _heat_map(fig, axes[3], interaction)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
