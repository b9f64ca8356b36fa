"""`mixer plot`: best-so-far against runs, the recommended weights, predicted against
observed (out-of-fold predictions of the search's model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mixer.errors import MixerError


def plot_search(path: Path, name: str, targets: list[float], maximize: bool, recommended: dict[str, float] | None,
                observed: np.ndarray, predicted: np.ndarray | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if path.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise MixerError(f"-o {path}: use a .png, .pdf or .svg file name")
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
