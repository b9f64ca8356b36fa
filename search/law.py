"""Log-linear data mixing laws (Ye et al., ICLR 2025; olmix): one law per metric,

    u_m(p) = c_m + exp(b_m + t_m . p),      p on the simplex [D],

fitted by torch L-BFGS on a Huber loss, many laws at once.

Every fit is batched: rows of a weight matrix W [F, n] say which runs (and how often) fit
number f sees, so the fit on all runs, its bootstrap refits and its cross-validation folds
are one optimisation (row 0 is always the fit on all runs). Each (fit, metric) pair starts
from `starts` floors c spread below the lowest value; given c the law is linear in
log(u - c), so each start's b and t come from a weighted ridge regression, and L-BFGS then
polishes all starts together. The best start per (fit, metric) by its own Huber loss wins.

Only b_m + t_m is identified (p sums to 1); the fitted t_m is centred (mean 0 over domains)
and b_m absorbs the shift, so `t` reads as olmix's interaction matrix: t[m, j] < 0 means
more of domain j lowers metric m relative to the other domains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from search.threads import one_thread


@dataclass(frozen=True)
class LawFitConfig:
    """Defaults chosen by cross-validation on RegMix's 512 training runs and on 24-run
    subsets of them (benchmarks/law_fit.py): a wide Huber zone (0.5, nearly least squares)
    and a little ridge beat olmix-style delta 0.02, and more than 4 starts overfit small
    searches (the best training fit of many is the most overfitted)."""

    huber_delta: float = 0.5
    starts: int = 4          # floors c tried per (fit, metric) before L-BFGS
    l2: float = 1e-5         # ridge on t, relative to the mean Huber loss
    max_iter: int = 300
    seed: int = 0


@dataclass
class LogLinearLaws:
    """c, b: [F, M]; t: [F, M, D]."""

    c: np.ndarray
    b: np.ndarray
    t: np.ndarray

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Each fit's value of each metric at mixtures X [n, D] -> [F, M, n]."""
        return self.c[..., None] + np.exp(self.b[..., None] + np.einsum("fmd,nd->fmn", self.t, X))

    def select(self, fits: slice | list[int]) -> "LogLinearLaws":
        return LogLinearLaws(self.c[fits], self.b[fits], self.t[fits])


def _huber(r: torch.Tensor, delta: float) -> torch.Tensor:
    a = r.abs()
    return torch.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _initial(X: np.ndarray, Y: np.ndarray, W: np.ndarray, cfg: LawFitConfig) -> np.ndarray:
    """Start parameters [F, M, S, D + 2] (c, b, t): floors spread log-uniformly from 1% to
    10x the metric's range below its lowest value, then b, t by weighted ridge on log(u - c)."""
    n, D = X.shape
    F, M, S = W.shape[0], Y.shape[1], cfg.starts
    rng = np.random.default_rng(cfg.seed)
    lowest, span = np.nanmin(Y, axis=0), np.maximum(np.nanmax(Y, axis=0) - np.nanmin(Y, axis=0), 1e-3)
    gap = np.exp(rng.uniform(np.log(0.01), np.log(10.0), size=(M, S)))
    c = lowest[:, None] - gap * span[:, None]                                   # [M, S]
    A = np.hstack([np.ones((n, 1)), X])                                         # [n, D+1]
    z = np.log(np.maximum(np.nan_to_num(Y, nan=np.inf)[:, :, None] - c[None], 1e-9))  # [n, M, S]
    z = np.where(np.isfinite(z), z, 0.0)
    Wm = W[:, None, :] * ~np.isnan(Y).T[None]                                   # [F, M, n]
    gram = np.einsum("fmn,ni,nj->fmij", Wm, A, A) + cfg.l2 * n * np.diag([0.0] + [1.0] * D)
    rhs = np.einsum("fmn,ni,nms->fmis", Wm, A, z)
    coef = np.linalg.solve(gram + 1e-9 * np.eye(D + 1), rhs)                    # [F, M, D+1, S]
    start = np.empty((F, M, S, D + 2))
    start[..., 0] = c[None]
    start[..., 1:] = np.swapaxes(coef, 2, 3)
    return start


@one_thread()
def fit_laws(X: np.ndarray, Y: np.ndarray, W: np.ndarray | None = None,
             cfg: LawFitConfig = LawFitConfig()) -> LogLinearLaws:
    """Fit M laws F times. X: [n, D] mixtures; Y: [n, M] values (NaN: not measured, not
    fitted); W: [F, n] non-negative run weights per fit (default: one fit on all runs)."""
    n, D = X.shape
    W = np.ones((1, n)) if W is None else np.asarray(W, dtype=np.float64)
    start = torch.as_tensor(_initial(X, Y, W, cfg))
    F, M, S, _ = start.shape
    mask = torch.as_tensor(W[:, None, None, :] * ~np.isnan(Y).T[None, :, None, :])       # [F, M, 1, n]
    counts = mask.sum(-1).clamp_min(1.0)
    y = torch.as_tensor(np.nan_to_num(Y).T[None, :, None, :])                            # [1, M, 1, n]
    x = torch.as_tensor(X)

    def per_start(theta: torch.Tensor) -> torch.Tensor:
        exponent = (theta[..., 1:2] + theta[..., 2:] @ x.T).clamp(max=50.0)              # [F, M, S, n]
        residual = theta[..., 0:1] + torch.exp(exponent) - y
        penalty = cfg.l2 * n * (theta[..., 2:] ** 2).sum(-1)
        return ((_huber(residual, cfg.huber_delta) * mask).sum(-1) + penalty) / counts   # [F, M, S]

    # Polish only each problem's best start: one L-BFGS over all problems shares its line
    # search, and far-off starts with large gradients would stall the rest.
    with torch.no_grad():
        screen = per_start(start)
        best = torch.where(torch.isfinite(screen), screen, torch.inf).argmin(-1)           # [F, M]
        first = torch.gather(start, 2, best[..., None, None].expand(F, M, 1, D + 2))      # [F, M, 1, D+2]
        first_loss = torch.gather(screen, 2, best[..., None])[..., 0]                     # [F, M]
    theta = first.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([theta], max_iter=cfg.max_iter, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-10, tolerance_change=1e-14, history_size=20)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = per_start(theta).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        polished_loss = per_start(theta)[..., 0]
        polished = torch.isfinite(polished_loss) & (polished_loss <= first_loss)
        chosen = torch.where(polished[..., None, None], theta, first)[:, :, 0].numpy()
    t = chosen[..., 2:]
    shift = t.mean(axis=-1)
    return LogLinearLaws(c=chosen[..., 0], b=chosen[..., 1] + shift, t=t - shift[..., None])


def bootstrap_weights(n: int, fits: int, seed: int) -> np.ndarray:
    """[fits, n]: row 0 all ones, then multinomial resampling counts of the n runs."""
    rng = np.random.default_rng(seed)
    return np.vstack([np.ones((1, n))] + [np.bincount(rng.integers(0, n, n), minlength=n)[None]
                                         for _ in range(fits - 1)]).astype(np.float64)


def fold_weights(n: int, folds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """[folds, n] weights that leave one fold out each, and each run's fold [n]."""
    fold = np.random.default_rng(seed).permutation(n) % folds
    return (fold[None, :] != np.arange(folds)[:, None]).astype(np.float64), fold
