"""`mixer transfer`: does the small-proxy ranking hold at a larger scale, on the user's data?

The recommendation, the K best distinct mixtures the search ran and the baselines are
trained with N seeds each at the search's own fidelity (runs `<search>/transfer/<label>/
seed-k`) and at the larger one (`<search>/transfer@<PRESET:TOKENS>/<label>/seed-k`), in the
search itself, so an interrupted transfer resumes (finished runs are reused) and `mixer sql`
sees everything. Replicate k of every mixture uses the same seed at a scale, so differences
between mixtures are paired (search.compare).

The report: each mixture's mean and std at both scales, the Spearman correlation of the
means across mixtures with a bootstrap interval (mixtures resampled), and at the large
scale the recommendation against each baseline: the mean paired difference with a 95%
t interval.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mixer.errors import MixerError
from mixer.mixture import Mixture
from mixer.workspace import Workspace
from search.backends.base import near, to_mixture
from search.compare import SeedStats, Verdict, verdict
from search.fidelity import proxy_label
from search.runs import finished_runs
from search.spec import SearchSpec
from search.state import SearchSetup, SearchState
from search.targets import Target
from store import get_search, latest_recommendation, search_runs
from store.records import RunRole

BASELINES = ("uniform", "token-share")
DEFAULT_SEEDS = 3    # seeds per mixture and scale when the search measured no seed noise
MAX_SEEDS = 8        # the most seeds the advice asks for (a mixture's cost grows with each)


@dataclass
class TransferRequest:
    fidelity: str                      # PRESET:TOKENS, the larger scale
    top: int = 5
    baselines: list[str] = field(default_factory=lambda: list(BASELINES))
    seeds: int | None = None           # None: chosen from the search's seed noise (seed_advice)
    parallel: int | None = None

    def __post_init__(self):
        self.fidelity = proxy_label(self.fidelity)
        unknown = [b for b in self.baselines if b not in BASELINES]
        if unknown:
            raise MixerError(f"unknown baseline(s) {', '.join(unknown)} (choose from {', '.join(BASELINES)})")
        if self.top < 0 or (self.seeds is not None and self.seeds < 2):
            raise MixerError("transfer needs --top >= 0 and --seeds >= 2 (seed noise needs two), got "
                             + (f"--top {self.top}" if self.top < 0 else f"--seeds {self.seeds}"))
        if self.parallel is not None and self.parallel < 1:
            raise MixerError(f"--parallel must be at least 1, got {self.parallel}")


@dataclass
class MixtureScales:
    label: str
    mixture: Mixture
    small: SeedStats
    large: SeedStats


@dataclass
class Comparison:
    verdict: Verdict
    interval: tuple[float, float]     # 95% t interval of the mean paired gain (positive: recommendation better)


@dataclass
class TransferReport:
    search: str
    small: str                         # fidelity labels
    large: str
    rows: list[MixtureScales]
    spearman: float
    spearman_interval: tuple[float, float]
    comparisons: list[Comparison]
    large_seeds_wanted: int | None = None  # seeds the larger scale's own noise and spread ask for (seeds_wanted)

    @property
    def seeds(self) -> int:
        """Seeds per mixture at the larger scale (the fewest any mixture has)."""
        return min((len(r.large.values) for r in self.rows), default=0)


def transfer(ws: Workspace, search_ref: str, request: TransferRequest,
             say: Callable[[str], None] = lambda _: None) -> TransferReport:
    from proxies.presets import PRESETS
    from search.extra_runs import evaluate_extra
    from search.session import SearchSession

    record = get_search(ws.db_path, search_ref)
    session = SearchSession(ws, record)
    if session.spec.proxy is None:
        raise MixerError(f"search '{record.name}' answers from a table; transfer trains proxies")
    if request.fidelity == session.spec.fidelity_label:
        raise MixerError(f"--fidelity {request.fidelity} is the search's own fidelity; give a larger one")
    preset = request.fidelity.split(":")[0]
    if preset not in PRESETS:
        raise MixerError(f"unknown proxy preset '{preset}' in --fidelity (see `mixer proxy presets`)")
    mixtures = plan(ws, session.setup, request)
    if request.parallel is not None:
        session.evaluator.parallel = request.parallel
    seeds, advice = seed_advice(session.load(), mixtures, request.seeds)
    say(advice)
    say(f"training {len(mixtures)} mixtures x {seeds} seeds at {session.spec.fidelity_label} "
        f"and at {request.fidelity} (finished runs are reused)")
    small = evaluate_extra(session, {f"transfer/{k}": m for k, m in mixtures.items()}, RunRole.transfer, seeds)
    large = evaluate_extra(session, {f"transfer@{request.fidelity}/{k}": m for k, m in mixtures.items()},
                           RunRole.transfer, seeds, fidelity=request.fidelity)
    failed = [run.run_id for run in list(small.values()) + list(large.values()) if not run.result.done]
    if failed:
        raise MixerError(f"{len(failed)} transfer run(s) failed ({', '.join(failed[:3])}); see `mixer search status "
                         f"{record.name}`, then run the transfer again")
    return stored_report(ws, record.name, request.fidelity, list(mixtures), request.baselines)


def seeds_wanted(noise_std: float, spread: float) -> int | None:
    """Seeds per mixture that bring the noise of a mixture's mean (noise_std / sqrt(n)) to
    a third of the spread of the mixtures' values: with more noise than that, the ranking's
    bootstrap interval spans most of [-1, 1] (a user's 2-seed transfer read -1.00 to 1.00).
    None when the mixtures do not spread at all."""
    return int(np.ceil(9.0 * noise_std ** 2 / spread ** 2)) if spread > 0 else None


def seeds_needed(noise_std: float, spread: float) -> int:
    """`seeds_wanted`, between 2 and MAX_SEEDS."""
    wanted = seeds_wanted(noise_std, spread)
    return MAX_SEEDS if wanted is None else int(min(MAX_SEEDS, max(2, wanted)))


def seed_advice(state: SearchState, mixtures: dict[str, Mixture], given: int | None) -> tuple[int, str]:
    """The seeds to train with (`given`, else chosen) and the line that says why: the
    search's seed noise (search.extra_runs.seed_noise) against the spread of the mixtures'
    own runs at the search's fidelity."""
    from search.extra_runs import seed_noise

    noise = seed_noise(state)
    at_target = state.at_target
    values = [float(at_target.y[rows[0]]) for m in mixtures.values()
              if len(rows := np.flatnonzero(near(at_target.X, m.vector(at_target.domains))))]
    runs = lambda n: f"{len(mixtures)} mixtures x {n} seeds x 2 scales = {2 * len(mixtures) * n} runs"  # noqa: E731
    if noise is None or len(values) < 2:
        seeds = given or DEFAULT_SEEDS
        why = ("no replicate runs in this search: `search start --replicates 2` measures it" if noise is None else
               "fewer than 2 of the mixtures ran in the search, so their spread is unknown")
        return seeds, f"seeds not chosen from the noise ({why}): {runs(seeds)}"
    spread = float(np.std(values, ddof=1))
    wanted = seeds_wanted(noise["std"], spread)
    needed = seeds_needed(noise["std"], spread)
    line = (f"seed noise {noise['std']:.4f} (std of one run, {noise['pairs']} pairs); the mixtures' runs spread "
            f"{spread:.4f}: " + (f"about {needed} seeds make a mean's noise a third of that spread"
                                 if wanted is not None and wanted <= MAX_SEEDS else
                                 f"{needed} seeds, the most chosen (a third of the spread would need "
                                 f"{wanted or 'more'}: the mixtures are hard to tell apart at this scale)"))
    if given is not None and given < needed:
        line += f"; with --seeds {given} the ranking's interval will be wide"
    return given or needed, f"{line}; {runs(given or needed)}"


def stored_report(ws: Workspace, search_ref: str, large: str | None = None, labels: list[str] | None = None,
                  baselines: list[str] | None = None) -> TransferReport:
    """The report from the transfer runs stored in the search (default: its latest larger
    fidelity, every mixture measured at both scales)."""
    record = get_search(ws.db_path, search_ref)
    runs = finished_runs(search_runs(ws.db_path, record.id))
    runs = runs[runs.role == RunRole.transfer.value]
    parts = runs.run_id.str.extract(rf"^{re.escape(record.name)}/transfer(?:@(?P<large>[^/]+))?/(?P<label>.+)"
                                    r"/seed-(?P<seed>\d+)$").assign(value=runs.target_value.to_numpy())
    parts = parts.dropna(subset=["label"])
    measured = [f for f in parts["large"].dropna().unique()]
    if not measured:
        raise MixerError(f"search '{record.name}' has no transfer runs; run `mixer transfer {record.name} "
                         "--fidelity PRESET:TOKENS` first")
    large = large or measured[-1]
    spec = SearchSpec.from_json(record.config)
    small_label = spec.fidelity_label
    rows = []
    for label in labels or list(dict.fromkeys(parts.label)):
        at_small = parts[parts.large.isna() & (parts.label == label)].sort_values("seed")
        at_large = parts[(parts.large == large) & (parts.label == label)].sort_values("seed")
        if len(at_small) and len(at_large):
            mixture = Mixture.normalized(dict(runs.loc[at_large.index[0]].mixture))
            rows.append(MixtureScales(label, mixture, SeedStats(label, tuple(at_small.value)),
                                      SeedStats(label, tuple(at_large.value))))
    wanted = baselines if baselines is not None else BASELINES
    present = [b for b in wanted if b in {r.label for r in rows}]
    return report(record.name, small_label, large, rows, spec.target, present,
                  same_as=_baselines_recommended(ws, record, rows, [b for b in wanted if b not in present]))


def _baselines_recommended(ws: Workspace, record, rows: list[MixtureScales], absent: list[str]) -> list[str]:
    """The baselines among `absent` that are the recommended mixture (trained once, as it)."""
    recommended = next((r.mixture for r in rows if r.label == "recommended"), None)
    if recommended is None or not absent:
        return []
    space = SearchSetup.of(ws, record).space
    x = recommended.vector(space.domains)
    return [b for b in absent if b in space.baselines and near(space.baselines[b][None, :], x)[0]]


def plan(ws: Workspace, setup: SearchSetup, request: TransferRequest) -> dict[str, Mixture]:
    """label -> mixture: the recommendation, the best distinct runs, the baselines."""
    rec = latest_recommendation(ws.db_path, setup.record.id)
    if rec is None:
        raise MixerError(f"search '{setup.name}' has no recommendation yet; finish it first "
                         f"(`mixer search resume {setup.name}`)")
    domains = setup.space.domains
    chosen = {"recommended": Mixture.normalized(rec["mixture"])}
    history = setup.load(ws).at_target
    baselines = np.array([x for b, x in setup.space.baselines.items() if b in request.baselines]).reshape(
        -1, len(domains))
    for i in np.argsort(history.y):
        if len(chosen) > request.top:
            break
        x = history.X[i]     # a best run that is a baseline is trained once, under the baseline's name
        if not near(np.array([m.vector(domains) for m in chosen.values()]), x).any() and not near(baselines, x).any():
            chosen[f"top-{len(chosen)}"] = Mixture.normalized(dict(zip(domains, x)))
    recommended = chosen["recommended"].vector(domains)
    chosen.update({b: to_mixture(domains, x) for b, x in setup.space.baselines.items()   # a baseline that is the
                   if b in request.baselines and not near(x[None, :], recommended)[0]})  # answer is trained once
    return chosen


def report(search: str, small: str, large: str, rows: list[MixtureScales], target: Target,
           baselines: list[str], resamples: int = 2000, seed: int = 0, same_as: list[str] = ()) -> TransferReport:
    """The report; `same_as`: baselines that are the recommended mixture itself."""
    from scipy.stats import spearmanr, t

    a = np.array([r.small.mean for r in rows])
    b = np.array([r.large.mean for r in rows])
    rho = float(spearmanr(a, b)[0]) if len(rows) > 2 else float("nan")
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples if len(rows) > 2 else 0):
        i = rng.integers(0, len(rows), len(rows))
        if np.ptp(a[i]) > 0 and np.ptp(b[i]) > 0:
            draws.append(spearmanr(a[i], b[i])[0])
    interval = (float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))) if draws else (np.nan, np.nan)
    by_label = {r.label: r for r in rows}
    comparisons = []
    for name in baselines if "recommended" in by_label else []:
        v = verdict(by_label["recommended"].large, by_label[name].large, target)
        n = len(by_label["recommended"].large.values)
        half = float(t.ppf(0.975, n - 1) * v.seed_std / np.sqrt(n))
        comparisons.append(Comparison(v, (v.gain - half, v.gain + half)))
    comparisons += [Comparison(Verdict(name, 0.0, 0.0, False, same_mixture=True), (0.0, 0.0)) for name in same_as]
    return TransferReport(search, small, large, rows, rho, interval, comparisons, _large_seeds_wanted(rows))


def _large_seeds_wanted(rows: list[MixtureScales]) -> int | None:
    """`seeds_wanted` at the larger scale's own seed noise (pooled over the mixtures) and
    spread: the seeds were chosen from the smaller scale's noise before training, and a
    larger scale can be noisier (benchmarks/transfer.py, `seeds_recommended_large`).
    None without two seeds or two mixtures."""
    stds = [r.large.std for r in rows if len(r.large.values) > 1]
    if not stds or len(rows) < 2:
        return None
    return seeds_wanted(float(np.sqrt(np.mean(np.square(stds)))), float(np.std([r.large.mean for r in rows], ddof=1)))
