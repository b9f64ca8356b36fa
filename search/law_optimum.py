"""The exact optimum of a fitted mixing law, as olmix solves it: over the simplex with
per-domain caps,

    minimise   sum_m w_m exp(b_m + t_m . p)  +  kl_reg * KL(p || prior)
    subject to p >= 0, sum(p) = 1, p <= caps,

a convex program when every weight w_m >= 0 (an exponential of an affine function is
convex, KL is convex), solved with cvxpy's exponential-cone solver (Clarabel). The floors
c_m only shift the objective. A negative weight (a metric the target rewards, fitted as a
convex law) makes the problem non-convex: `solve` refuses it and the caller falls back to
a candidate search.

The problem is built once with cvxpy Parameters, so re-solving for bootstrap laws
(Thompson-style proposals) only swaps numbers.
"""

from __future__ import annotations

import numpy as np

from mixer.errors import MixerError


class LawProgram:
    """The program for D domains and M laws; `solve(b [M], t [M, D], w [M])` -> p [D]."""

    def __init__(self, prior: np.ndarray, caps: np.ndarray | None, kl_reg: float, n_laws: int):
        import cvxpy as cp

        D = len(prior)
        if caps is not None and caps.sum() < 1.0 - 1e-9:
            raise MixerError(f"the repetition caps sum to {caps.sum():.3f} < 1: no mixture respects them")
        self.p = cp.Variable(D, nonneg=True)
        self.b, self.t = cp.Parameter(n_laws), cp.Parameter((n_laws, D))
        objective = cp.sum(cp.exp(self.b + self.t @ self.p))   # w_m folded into b_m: DPP, fast re-solves
        if kl_reg > 0:
            objective = objective + kl_reg * cp.sum(cp.kl_div(self.p, np.maximum(prior, 1e-12)))
        constraints = [cp.sum(self.p) == 1]
        if caps is not None:
            constraints.append(self.p <= np.minimum(caps, 1.0))
        self.problem = cp.Problem(cp.Minimize(objective), constraints)

    def solve(self, b: np.ndarray, t: np.ndarray, w: np.ndarray) -> np.ndarray:
        import cvxpy as cp

        if (w < 0).any():
            raise ValueError("non-convex: a law has a negative weight")
        self.b.value, self.t.value = b + np.log(np.maximum(w, 1e-300)), t
        try:
            self.problem.solve(solver=cp.CLARABEL)
        except cp.SolverError as error:
            raise MixerError(f"the mixing-law optimum failed to solve: {error}") from None
        if self.p.value is None or self.problem.status not in ("optimal", "optimal_inaccurate"):
            raise MixerError(f"the mixing-law optimum failed to solve (status {self.problem.status})")
        p = np.maximum(self.p.value, 0.0)
        return p / p.sum()
