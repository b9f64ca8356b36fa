"""The Gaussian process of the `bayesopt` backend: mixture weights plus fidelity inputs ->
target, fitted with BoTorch.

One fidelity: `SingleTaskGP` on the weights. Several: `SingleTaskMultiFidelityGP`, whose
linear-truncated fidelity kernel (Wu et al., 2019) lets low-fidelity runs inform the target
fidelity through a shared component while the fidelity-dependent part vanishes at the
target (fidelity inputs 1). The token budget is its iteration fidelity, the model size (or,
for run tables, the cost) its data fidelity. Outputs are standardised (BoTorch's default
`Standardize`); the model is fitted to the negated target so that it is maximised.

The prior mean is linear in all inputs, not constant: losses are close to linear in the
weights (RegMix's linear fit ranks its test mixtures at Spearman ~90) and shift with the
fidelity, so the kernel only has to model what a plane misses. Its weights have a N(0, 4^2)
prior (in standardised units): without one, fewer runs than inputs are fitted exactly by the
plane and the marginal-likelihood optimiser does not converge (benchmarks/README.md).

The optimiser stops after `FIT_MAXITER` iterations (BoTorch keeps the best point), a stop
that depends on the runs alone; converging fully changes the model's ranking of mixtures
by nothing that matters and costs 10-30 times as long (benchmarks/README.md).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from search.fidelity import Fidelities
from search.threads import one_thread

FIT_MAXITER = 100     # L-BFGS iterations: a stop that depends on the data, not on the machine's speed
FIT_TIMEOUT_S = 60.0  # a safety for very large tables only
FIT_SEED = 0          # the linear mean's initial weights and the optimiser's restarts draw from torch's RNG
MEAN_WEIGHT_PRIOR_STD = 4.0


def linear_mean(n_inputs: int):
    """A linear prior mean with a N(0, MEAN_WEIGHT_PRIOR_STD^2) prior on its weights."""
    from gpytorch.means import LinearMean
    from gpytorch.priors import NormalPrior

    mean = LinearMean(n_inputs)
    mean.register_prior("weights_prior", NormalPrior(0.0, MEAN_WEIGHT_PRIOR_STD), "weights")
    return mean.double()


class MixtureGP:
    """fit(Z [n, D + F], y [n]) with Z = weights then fidelity inputs and y in minimise
    orientation; then `model` (BoTorch, maximising -y) and `predict_target(X [m, D])`."""

    def __init__(self, n_domains: int, fidelity: Fidelities):
        self.n_domains, self.fidelity = n_domains, fidelity
        self.model = None

    @property
    def n_inputs(self) -> int:
        return self.n_domains + (self.fidelity.inputs.shape[1] if self.fidelity.multi else 0)

    def inputs(self, X: np.ndarray, labels: list[str | None]) -> np.ndarray:
        """Z [m, D + F]: mixtures X [m, D] with the fidelity inputs of their labels."""
        if not self.fidelity.multi:
            return X
        rows = [self.fidelity.index(label) for label in labels]
        fidelity_inputs = self.fidelity.inputs[np.array(rows, dtype=np.int64)]
        return np.hstack([X, fidelity_inputs])

    def at_target(self, X: np.ndarray) -> np.ndarray:
        """Z [m, D + F] of mixtures X [m, D] at the target fidelity."""
        return self.inputs(X, [self.fidelity.target] * len(X))

    @one_thread()
    def fit(self, Z: np.ndarray, y: np.ndarray) -> "MixtureGP":
        """Fit the hyperparameters by marginal likelihood, from BoTorch's default start and
        with torch's RNG seeded: the same runs give the same model in any process, so a
        resumed search, or one that maximises -L instead of minimising L, proposes exactly
        what the uninterrupted one would (a warm start from the previous round's model made
        the fit depend on the search's past and broke both)."""
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP, SingleTaskMultiFidelityGP
        from gpytorch.mlls import ExactMarginalLogLikelihood

        train_X = torch.as_tensor(Z, dtype=torch.float64)
        train_Y = torch.as_tensor(-y, dtype=torch.float64)[:, None]
        with warnings.catch_warnings(), torch.random.fork_rng():
            warnings.simplefilter("ignore")  # BoTorch warns on every restart of the optimiser
            torch.manual_seed(FIT_SEED)      # the linear mean's initial weights, the optimiser's restarts
            if self.fidelity.multi:
                names = self.fidelity.input_names
                columns = {name: self.n_domains + i for i, name in enumerate(names)}
                self.model = SingleTaskMultiFidelityGP(
                    train_X, train_Y, iteration_fidelity=columns.get("tokens"),
                    data_fidelities=[c for name, c in columns.items() if name != "tokens"] or None)
                self.model.mean_module = linear_mean(self.n_inputs)
            else:
                self.model = SingleTaskGP(train_X, train_Y, mean_module=linear_mean(self.n_inputs))
            fit_gpytorch_mll(ExactMarginalLogLikelihood(self.model.likelihood, self.model),
                             optimizer_kwargs={"timeout_sec": FIT_TIMEOUT_S, "options": {"maxiter": FIT_MAXITER}})
        self.model.eval()
        return self

    @one_thread()
    def predict_target(self, X: np.ndarray, batch: int = 8192) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and std [m] of the target (minimise orientation) at the target
        fidelity, for mixtures X [m, D]."""
        # as m batches of one point [m, 1, D + F]: the marginals only, never the m x m covariance
        Z = torch.as_tensor(self.at_target(X), dtype=torch.float64)[:, None, :]
        means, stds = [], []
        with torch.no_grad():
            for start in range(0, len(Z), batch):
                posterior = self.model.posterior(Z[start:start + batch])
                means.append(-posterior.mean.reshape(-1))
                stds.append(posterior.variance.clamp_min(0).sqrt().reshape(-1))
        return torch.cat(means).numpy(), torch.cat(stds).numpy()

    def project_to_target(self, Z: torch.Tensor) -> torch.Tensor:
        """Z [..., D + F] with every fidelity input set to 1 (the target)."""
        projected = Z.clone()
        projected[..., self.n_domains:] = 1.0
        return projected

    def cost_model(self, costs: dict[str | None, float]):
        """A BoTorch deterministic model: Z [..., D + F] -> cost [..., 1] of the nearest fidelity."""
        from botorch.models.deterministic import GenericDeterministicModel

        levels = torch.as_tensor(self.fidelity.inputs, dtype=torch.float64)
        table = torch.tensor([costs[label] for label in self.fidelity.labels], dtype=torch.float64)

        def cost(Z: torch.Tensor) -> torch.Tensor:
            fid = Z[..., self.n_domains:].reshape(-1, levels.shape[1])
            nearest = torch.cdist(fid, levels).argmin(dim=-1)
            return table[nearest].reshape(*Z.shape[:-1], 1)

        return GenericDeterministicModel(cost)
