"""Online mixing: controllers that change the mixture during one training run.

It lives in `mixer/`, beside the loader, because it needs nothing else: a controller sees
only step counts and per-domain held-out losses, and answers with mixtures for
`MixtureLoader.set_mixture`. So the same object drives mixer's proxy trainer and any
PyTorch loop, on CPU or CUDA, single rank or data-parallel (every rank measures the same
losses, e.g. all-reduced, and so takes the same decisions):

    controller = Aioli(loader.names, AioliConfig(), total_steps=T, tokens_per_step=B * S)
    loader = MixtureLoader(domains, controller.mixture, cfg)
    for step in range(T):                              # step: batches trained so far
        if controller.wants(step):
            new = controller.observe(step, held_out_losses())
            if new is not None:
                loader.set_mixture(new)
        train_on(next(loader))

Checkpoint `controller.state_dict()` with `loader.state_dict()`: both are plain JSON-able
data, and a run resumed from them takes the same weights and the same future decisions.

- `Aioli` (Chen et al., ICLR 2025): rounds of `update_steps`; each round first runs
  LearnParams (for `lp_rounds` sweeps, every domain's smoothed one-hot mixture for
  `lp_steps` steps, losses measured before and after each probe), de-mixes the loss drops
  into the interaction matrix A of the linear dynamic mixing law
  L(t+1) = L(t) - A p(t), normalises it, smooths it with an EMA, and takes an
  exponentiated-gradient step p <- p * exp(eta * sum_i A_i.) for the rest of the round.
  Each probe's realised mixture is exactly the intended one: `set_mixture` starts a new
  exact-blend segment, whose counts stay within one sequence of weight x length.
- `DoReMi` (Xie et al., NeurIPS 2023): every `update_steps`, the per-domain excess loss over
  a reference run, clipped at 0, moves log-weights by `eta`, and the weights are smoothed
  toward uniform by `eps`; the answer is the time-averaged weights. It measures on the whole
  held-out split (`full_held_out`), the text the reference run's final losses were measured
  on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum

import numpy as np

from mixer.errors import MixerError
from mixer.mixture import Mixture, Schedule


class Phase(str, Enum):
    prior = "prior"      # Aioli's prior mixture before its first round
    probe = "probe"      # a LearnParams probe (smoothed one-hot)
    update = "update"    # a method's decision


@dataclass
class Stage:
    """A mixture in force from `step` (batches trained before it) on."""

    step: int
    weights: list[float]
    phase: str


@dataclass
class Measurement:
    step: int
    losses: list[float]


@dataclass
class AioliConfig:
    """Names and defaults as in the Aioli paper and its scripts (lp_rounds 4, lp_steps 4,
    one-hot factor 0.75, ema 0.1, normalised A)."""

    eta: float = 0.2
    lp_rounds: int = 4
    lp_steps: int = 4
    one_hot_factor: float = 0.75
    ema: float = 0.1                # weight of the previous A in the moving average (0: none)
    update_steps: int = 250
    prior_steps: int = 0
    prior: str = "uniform"          # the mixture before (prior_steps) and where the EG steps start: uniform or NAME=W,...
    normalize: bool = True
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.one_hot_factor <= 1:
            raise MixerError(f"aioli one_hot_factor must be in (0, 1], got {self.one_hot_factor}")
        if self.lp_rounds < 1 or self.lp_steps < 1 or self.eta <= 0 or not 0 <= self.ema < 1 or self.prior_steps < 0:
            raise MixerError("aioli needs lp_rounds >= 1, lp_steps >= 1, eta > 0, 0 <= ema < 1 and prior_steps >= 0")


@dataclass
class DoReMiConfig:
    """Defaults of DoReMi's 120M script: eta 1, smoothing 1e-3. `reference`: the reference
    run's mixture (`uniform` or NAME=W,...), trained first; `reference_run`: an existing run
    of the workspace to use instead. The controller itself is given the reference losses."""

    eta: float = 1.0
    eps: float = 1e-3
    update_steps: int = 20
    reference: str = "uniform"
    reference_run: str = ""

    def __post_init__(self):
        if self.eta <= 0 or not 0 <= self.eps < 1 or self.update_steps < 1:
            raise MixerError("doremi needs eta > 0, 0 <= eps < 1 and update_steps >= 1")


@dataclass
class _Common:
    """What every controller records: the stages it set and the losses it was told."""

    stages: list[Stage] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)


class OnlineController:
    """The interface (see the module docstring). Subclasses implement `_decide`."""

    method: str = ""
    full_held_out: bool = False   # True: measure on the whole held-out split, not the curve's fixed slice

    def __init__(self, names: list[str] | tuple[str, ...], total_steps: int, tokens_per_step: int,
                 measured: list[str] | None = None):
        self.names = list(names)
        self.measured = self.names + [n for n in (measured or []) if n not in self.names]  # losses it is told
        if len(self.names) < 2:
            raise MixerError(f"online mixing needs at least 2 domains, has {len(self.names)}")
        if total_steps < 1:
            raise MixerError("online mixing needs a run of at least one step")
        self.total_steps, self.tokens_per_step = int(total_steps), int(tokens_per_step)
        self.log = _Common()

    # ---------------------------------------------------------------- public

    @property
    def mixture(self) -> Mixture:
        """The mixture in force now."""
        return self._mixture(np.asarray(self.log.stages[-1].weights))

    def wants(self, step: int) -> bool:
        """Whether to measure held-out losses after `step` batches."""
        raise NotImplementedError

    def observe(self, step: int, losses: dict[str, float]) -> Mixture | None:
        """Held-out losses after `step` batches (every domain's, and every eval-only set's the
        controller steers by) -> the mixture from the next batch on (None: keep the current
        one)."""
        missing = [n for n in self.measured if n not in losses]
        if missing:
            raise MixerError(f"online controller needs a loss for every domain; missing {', '.join(missing)}")
        vector = np.array([float(losses[n]) for n in self.measured])
        self.log.measurements.append(Measurement(int(step), vector.tolist()))
        decision = self._decide(int(step), vector)
        if decision is None:
            return None
        weights, phase = decision
        self.log.stages.append(Stage(int(step), np.asarray(weights, dtype=np.float64).tolist(), phase.value))
        return self._mixture(weights)

    def average(self) -> Mixture:
        """The time-averaged mixture of the method's own decisions (probes excluded),
        weighted by the steps each was in force."""
        ends = [s.step for s in self.log.stages[1:]] + [self.total_steps]
        total, weight = np.zeros(len(self.names)), 0.0
        for stage, end in zip(self.log.stages, ends):
            if stage.phase != Phase.probe.value and end > stage.step:
                total += (end - stage.step) * np.asarray(stage.weights)
                weight += end - stage.step
        if weight == 0:
            return self.mixture
        return self._mixture(total / weight)

    def schedule(self) -> Schedule:
        """Every stage the run trained on, as a Schedule (starts as fractions of the run)."""
        starts, mixtures = [], []
        for stage in self.log.stages:
            start = stage.step / self.total_steps
            if start >= 1.0:
                continue
            if starts and start == starts[-1]:
                mixtures[-1] = self._mixture(np.asarray(stage.weights))
                continue
            starts.append(start)
            mixtures.append(self._mixture(np.asarray(stage.weights)))
        return Schedule(tuple(starts), tuple(mixtures))

    def state_dict(self) -> dict:
        return {"method": self.method, "names": self.names, "total_steps": self.total_steps,
                "stages": [asdict(s) for s in self.log.stages],
                "measurements": [asdict(m) for m in self.log.measurements], **self._state()}

    def load_state_dict(self, state: dict) -> None:
        if state.get("method") != self.method or state.get("names") != self.names:
            raise MixerError(f"controller state is for {state.get('method')} over {state.get('names')}, "
                             f"not {self.method} over {self.names}")
        self.log = _Common([Stage(**s) for s in state["stages"]], [Measurement(**m) for m in state["measurements"]])
        self._load(state)

    def report(self) -> dict:
        """Plain data for the store: stages with tokens, measurements, the average."""
        return {"method": self.method, "names": self.names, "measured": self.measured,
                "total_steps": self.total_steps, "tokens_per_step": self.tokens_per_step,
                "stages": [{**asdict(s), "tokens": s.step * self.tokens_per_step} for s in self.log.stages],
                "measurements": [{**asdict(m), "tokens": m.step * self.tokens_per_step}
                                 for m in self.log.measurements],
                "average": self.average().as_dict(), "schedule": self.schedule().as_dict()}

    # ---------------------------------------------------------------- internals

    def _mixture(self, weights: np.ndarray) -> Mixture:
        return Mixture.normalized(dict(zip(self.names, np.maximum(weights, 0.0))))

    def _decide(self, step: int, losses: np.ndarray) -> tuple[np.ndarray, Phase] | None:
        raise NotImplementedError

    def _state(self) -> dict:
        raise NotImplementedError

    def _load(self, state: dict) -> None:
        raise NotImplementedError


class Aioli(OnlineController):
    """`objective`: what the EG step lowers, {loss name: coefficient} over the domains' and
    eval-only sets' losses (default: every domain's, equally, as the paper's sum). A target
    set's row of A says how training on each domain moves its loss, so the weights steer
    toward that text, as Aioli's target-domain setting does."""

    method = "aioli"

    def __init__(self, names, cfg: AioliConfig, total_steps: int, tokens_per_step: int,
                 objective: dict[str, float] | None = None):
        objective = objective or {n: 1.0 for n in names}
        super().__init__(names, total_steps, tokens_per_step, measured=list(objective))
        self.objective = np.array([float(objective.get(n, 0.0)) for n in self.measured])
        self.cfg, k = cfg, len(self.names)
        if cfg.one_hot_factor <= 1.0 / k:
            raise MixerError(f"aioli one_hot_factor must exceed 1 / domains = {1.0 / k:.3g} (a probe must favour its "
                             f"domain), got {cfg.one_hot_factor}")
        self.lp_duration = cfg.lp_rounds * k * cfg.lp_steps
        if cfg.update_steps <= self.lp_duration:
            raise MixerError(f"aioli update_steps ({cfg.update_steps}) must exceed LearnParams' "
                             f"lp_rounds x domains x lp_steps = {self.lp_duration} steps")
        if cfg.prior_steps + cfg.update_steps > total_steps:
            raise MixerError(f"aioli prior_steps + update_steps ({cfg.prior_steps + cfg.update_steps}) is longer "
                             f"than the run ({total_steps} steps)")
        self.prior = self._prior(cfg.prior)
        self.weights = self.prior.copy()          # the EG iterate
        self.ema_A: np.ndarray | None = None
        self.drops = np.zeros((len(self.measured), k))  # [measured loss i, probe j] summed loss drops this round
        self.previous: np.ndarray | None = None
        self.last_A: np.ndarray | None = None      # de-mixed, before normalisation (for inspection)
        self.log.stages.append(Stage(0, self.prior.tolist(), Phase.prior.value if cfg.prior_steps else
                                     Phase.update.value))

    def _prior(self, text: str) -> np.ndarray:
        if text == "uniform":
            return np.full(len(self.names), 1.0 / len(self.names))
        try:
            weights = Mixture.parse(text, known_domains=self.names).vector(self.names)
        except MixerError as error:
            raise MixerError(f"aioli prior '{text}': {error} (or use uniform)") from None
        weights = np.maximum(weights, 1e-6)   # EG steps multiply: a zero weight could never grow
        return weights / weights.sum()

    def probe_mixture(self, j: int) -> np.ndarray:
        """Probe j's mixture: one_hot_factor on domain j, the rest spread evenly."""
        k, f = len(self.names), self.cfg.one_hot_factor
        p = np.full(k, (1.0 - f) / (k - 1))
        p[j] = f
        return p

    def _position(self, step: int) -> tuple[int, int] | None:
        """(round, offset into it) for a step at or after the prior phase."""
        if step < self.cfg.prior_steps:
            return None
        return divmod(step - self.cfg.prior_steps, self.cfg.update_steps)

    def _probe_order(self, round_: int, sweep: int) -> np.ndarray:
        return np.random.default_rng([self.cfg.seed, round_, sweep]).permutation(len(self.names))

    def wants(self, step: int) -> bool:
        """Before and after each probe of a round; a round whose LearnParams would not end
        before the run does is not started (the last mixture trains to the end)."""
        position = self._position(step)
        if position is None or step >= self.total_steps:
            return False
        _, offset = position
        if step - offset + self.lp_duration >= self.total_steps:
            return False
        return offset <= self.lp_duration and offset % self.cfg.lp_steps == 0

    def _decide(self, step: int, losses: np.ndarray) -> tuple[np.ndarray, Phase] | None:
        position = self._position(step)
        if position is None:
            return None
        round_, offset = position
        k = len(self.names)
        if offset == 0:
            self.drops[:] = 0.0
        done = offset // self.cfg.lp_steps                   # probes finished this round
        if done > 0 and self.previous is not None:
            sweep, index = divmod(done - 1, k)
            j = int(self._probe_order(round_, sweep)[index])
            self.drops[:, j] += self.previous - losses
        self.previous = losses
        if offset < self.lp_duration:                        # the next probe
            sweep, index = divmod(offset // self.cfg.lp_steps, k)
            return self.probe_mixture(int(self._probe_order(round_, sweep)[index])), Phase.probe
        self._update()
        return self.weights.copy(), Phase.update

    def _update(self) -> None:
        k = len(self.names)
        probes = np.stack([self.probe_mixture(j) for j in range(k)])          # [probe j, domain m]
        drops = self.drops / self.cfg.lp_rounds                               # [measured loss i, probe j]
        # drops[i, j] = sum_m A[i, m] probes[j, m]  ->  A[i] = probes^-1 drops[i]
        A = np.linalg.solve(probes, drops.T).T
        self.last_A = A.copy()
        if self.cfg.normalize and A.min() < 0:
            A = A - A.min()
            A = A / A.sum() if A.sum() > 0 else A
        if self.cfg.ema == 0:   # the paper's update: p_t ~ p_{t-1} exp(eta sum_i A_i.)
            self.ema_A = A
            start = self.weights
        else:                   # with the moving average, as the reference code: p_t ~ p_0 exp(eta sum_i EMA(A)_i.),
            self.ema_A = A if self.ema_A is None else (1 - self.cfg.ema) * A + self.cfg.ema * self.ema_A
            start = self.prior  # since the average already carries the past (compounding would count it twice)
        logits = np.log(np.maximum(start, 1e-300)) + self.cfg.eta * (self.objective[:, None] * self.ema_A).sum(axis=0)
        self.weights = np.exp(logits - logits.max())
        self.weights /= self.weights.sum()

    def _state(self) -> dict:
        return {"weights": self.weights.tolist(), "drops": self.drops.tolist(),
                "ema_A": None if self.ema_A is None else self.ema_A.tolist(),
                "previous": None if self.previous is None else self.previous.tolist(),
                "last_A": None if self.last_A is None else self.last_A.tolist()}

    def _load(self, state: dict) -> None:
        arr = lambda v: None if v is None else np.asarray(v, dtype=np.float64)  # noqa: E731
        self.weights, self.drops = arr(state["weights"]), arr(state["drops"])
        self.ema_A, self.previous, self.last_A = arr(state["ema_A"]), arr(state["previous"]), arr(state["last_A"])


class DoReMi(OnlineController):
    method = "doremi"
    full_held_out = True     # its excess loss compares with the reference run's final held-out losses

    def __init__(self, names, cfg: DoReMiConfig, total_steps: int, tokens_per_step: int,
                 reference: dict[str, float]):
        super().__init__(names, total_steps, tokens_per_step)
        missing = [n for n in self.names if n not in reference]
        if missing:
            raise MixerError(f"the doremi reference run has no loss for {', '.join(missing)}")
        if cfg.update_steps > total_steps:
            raise MixerError(f"doremi update_steps ({cfg.update_steps}) is longer than the run ({total_steps} steps)")
        self.cfg = cfg
        self.reference = np.array([float(reference[n]) for n in self.names])
        k = len(self.names)
        self.log_weights = np.full(k, -np.log(k))
        self.log.stages.append(Stage(0, np.full(k, 1.0 / k).tolist(), Phase.update.value))

    def wants(self, step: int) -> bool:
        return 0 < step < self.total_steps and step % self.cfg.update_steps == 0

    def _decide(self, step: int, losses: np.ndarray) -> tuple[np.ndarray, Phase]:
        excess = np.maximum(losses - self.reference, 0.0)
        logits = self.log_weights + self.cfg.eta * excess
        weights = np.exp(logits - logits.max())
        weights = (1 - self.cfg.eps) * weights / weights.sum() + self.cfg.eps / len(self.names)
        self.log_weights = np.log(weights)   # DoReMi's Algorithm 1 smooths the iterate itself
        return weights, Phase.update

    def _state(self) -> dict:
        return {"log_weights": self.log_weights.tolist()}

    def _load(self, state: dict) -> None:
        self.log_weights = np.asarray(state["log_weights"], dtype=np.float64)


METHODS: dict[str, tuple[type[OnlineController], type]] = {"aioli": (Aioli, AioliConfig), "doremi": (DoReMi, DoReMiConfig)}


def method_config(method: str) -> type:
    """The typed config class of an online method; an unknown name is a MixerError."""
    if method not in METHODS:
        raise MixerError(f"unknown online method '{method}' (choose from {', '.join(METHODS)})")
    return METHODS[method][1]


def make_controller(method: str, config, names: list[str], total_steps: int, tokens_per_step: int,
                    reference: dict[str, float] | None = None, objective: dict[str, float] | None = None
                    ) -> OnlineController:
    """A controller from its method name and typed config (DoReMi also needs the reference
    run's per-domain losses; Aioli steers by `objective`, default every domain's loss)."""
    method_config(method)  # an unknown name fails here
    if METHODS[method][0] is DoReMi:
        if objective is not None:
            raise MixerError("doremi steers by each domain's excess loss over its reference (a group-robust "
                             "objective of its own); for a target, use --method aioli")
        return DoReMi(names, config, total_steps, tokens_per_step, reference or {})
    return Aioli(names, config, total_steps, tokens_per_step, objective)
