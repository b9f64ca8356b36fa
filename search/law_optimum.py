"""The exact optimum of a fitted mixing law, as olmix solves it: over the simplex within
the weight bounds (mixer.bounds: repetition caps, --min/--max/--fix),

    minimise   sum_m w_m exp(b_m + t_m . p)  +  kl_reg * KL(p || prior)
    subject to p >= 0, sum(p) = 1, lower <= p <= upper,

or, for a worst-case target, the epigraph of the largest law,

    minimise   s  +  kl_reg * KL(p || prior)
    subject to c_m + exp(b_m + t_m . p) <= s for every m,  and the same constraints,

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

from mixer.bounds import WeightBounds
from mixer.errors import MixerError


class LawProgram:
    """The program for D domains and M laws; `solve(b [M], t [M, D], w [M], c [M])` -> p [D]."""

    def __init__(self, prior: np.ndarray, bounds: WeightBounds | None, kl_reg: float, n_laws: int,
                 worst: bool = False):
        import cvxpy as cp

        D = len(prior)
        self.p = cp.Variable(D, nonneg=True)
        self.b, self.t, self.c = cp.Parameter(n_laws), cp.Parameter((n_laws, D)), cp.Parameter(n_laws)
        constraints = [cp.sum(self.p) == 1]
        if worst:
            level = cp.Variable()
            objective = level
            constraints.append(self.c + cp.exp(self.b + self.t @ self.p) <= level)
        else:
            objective = cp.sum(cp.exp(self.b + self.t @ self.p))   # w_m folded into b_m: DPP, fast re-solves
        if kl_reg > 0:
            objective = objective + kl_reg * cp.sum(cp.kl_div(self.p, np.maximum(prior, 1e-12)))
        if bounds is not None and bounds.active:
            constraints += [self.p >= bounds.lower, self.p <= bounds.upper]
        self.problem = cp.Problem(cp.Minimize(objective), constraints)

    def solve(self, b: np.ndarray, t: np.ndarray, w: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
        import cvxpy as cp

        if (w < 0).any():
            raise ValueError("non-convex: a law has a negative weight")
        self.b.value, self.t.value = b + np.log(np.maximum(w, 1e-300)), t
        self.c.value = np.zeros(len(b)) if c is None else np.asarray(c, dtype=np.float64)
        try:
            self.problem.solve(solver=cp.CLARABEL)
        except cp.SolverError as error:
            raise MixerError(f"the mixing-law optimum failed to solve: {error}") from None
        if self.p.value is None or self.problem.status not in ("optimal", "optimal_inaccurate"):
            raise MixerError(f"the mixing-law optimum failed to solve (status {self.problem.status})")
        p = np.maximum(self.p.value, 0.0)
        return p / p.sum()
