"""Mixture reuse after a corpus change (`search start --reuse`), against a full re-search, on
RegMix's 17-domain runs (olmix reports reuse at par with a full recompute for 26% of its
compute).

The truth: a LightGBM ensemble fitted on all 768 1M-parameter runs of RegMix's tables
(Pile-CC loss), answering any leaf mixture; a run observes it plus Gaussian noise at the
ensemble's out-of-fold error (`noise`, the table's noise as this model sees it). Per change
and seed (which domains, drawn by the seed):
- `add`: the earlier corpus lacked one domain (its weight 0 in the truth);
- `remove`: the new corpus lacks one domain (only removals: the reuse search keeps every
  domain free, with the earlier answer as its first run, as search.reuse does);
- `update`: two domains changed: the earlier truth had their weights swapped.
An earlier regmix search over the earlier corpus gives an answer. Then, over the new corpus,
a full regmix search and a reuse search (search.reuse's aggregate mode: the unchanged
domains as one group at the earlier answer's ratios, the earlier answer as the `previous`
baseline) each run `--runs` runs in batches of 4, answering through the guard after each
batch (search.guard, as the driver does). Cost: runs until the answer's true loss is within
`noise` of the full search's final answer. Keys `reuse_cost_ratio_<change>` (reuse's cost
over the full search's, median over seeds; goal <= 0.4), `reuse_regret_<change>` (the reuse
answer's true loss at that cost minus the full search's final, median; goal within `noise`),
`full_runs_<change>`, `reuse_runs_<change>`, `noise`.

`--proxy`: the same on real proxy runs, through the commands' own path (driver.create with
`--reuse`): four domains of ../shared/corpus/ (tiny proxies, `--tokens`, target `avg`), a
16-run regmix search; then wikipedia is added; a full 16-run search over the five and a
16-run reuse search (seed 1 both). Their guarded answers from the first 4, 8 and 16 runs
are each trained on 3 fresh seeds. Keys `proxy_reuse_cost_ratio_add` (runs until the reuse
answer's 3-seed mean is within one run's seed std of the full 16-run answer's, over the
full search's runs to do the same), `proxy_reuse_regret_add`, `proxy_seed_std`.

    python benchmarks/reuse.py [--json out.json] [--seeds 10] [--runs 48] [--quick] [--proxy]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import parser, report  # noqa: E402
from benchmarks.regression import REGMIX, load  # noqa: E402
from search.backends import make_backend  # noqa: E402
from search.backends.regmix import RegMixConfig, fit_checked  # noqa: E402
from search.fidelity import Fidelities  # noqa: E402
from search.groups import coordinates, expand  # noqa: E402
from search.guard import guard  # noqa: E402
from search.history import History  # noqa: E402
from search.reuse import aggregate, previous_answer  # noqa: E402
from search.space import SearchSpace  # noqa: E402

DOMAINS = [f"d{i:02d}" for i in range(17)]
BATCH = 4
OPTIONS = {"n_candidates": 20_000, "screen_top": 500}
CHANGES = ("add", "remove", "update")


class Truth:
    """Pile-CC loss of any mixture over the 17 domains, from RegMix's 1M runs."""

    def __init__(self):
        X = np.vstack([load("train", "1m")[0], load("test", "1m")[0]])
        y = np.concatenate([load("train", "1m")[1], load("test", "1m")[1]])
        fitted = fit_checked(RegMixConfig(regressor="lightgbm"), X, y)
        self.model, self.noise = fitted.model, float(fitted.quality.cv_rmse)

    def loss(self, leaves: dict[str, float], swap: tuple[str, str] | None = None) -> float:
        x = np.array([leaves.get(d, 0.0) for d in DOMAINS])
        if swap:
            i, j = DOMAINS.index(swap[0]), DOMAINS.index(swap[1])
            x[[i, j]] = x[[j, i]]
        return float(self.model.predict(x[None])[0][0])


def search(truth: Truth, leaves: list[str], groups: dict, runs: int, seed: int, swap=None, previous=None
           ) -> list[tuple[int, float, dict[str, float]]]:
    """A regmix search over `leaves` (with `groups`), observing the truth plus noise: after
    each batch, (runs so far, the guarded answer's true loss, its leaf weights)."""
    names = coordinates(leaves, groups)
    rng = np.random.default_rng([seed, 7])
    prior = np.full(len(names), 1.0 / len(names))
    baselines = {"uniform": prior.copy()}
    if previous is not None:
        baselines["previous"] = np.array([previous.get(n, 0.0) for n in names])
    space = SearchSpace(names, prior=prior, fidelity=Fidelities.single("1m"), seed=seed, budget_runs=runs,
                        baselines=baselines)
    backend = make_backend("regmix", {**OPTIONS, "seed": seed}, space)
    history, trajectory = History.empty(names), []
    while len(history) < runs:
        for p in backend.propose(history, min(BATCH, runs - len(history)), np.random.default_rng([seed, len(history)])):
            x = p.mixture.vector(names)
            observed = truth.loss(expand(dict(zip(names, x)), groups), swap) + rng.normal(0, truth.noise)
            history = history.append(x, observed, "1m", f"r{len(history)}")
        if len(history) >= 3:
            rec = guard(backend.fit(history), "1m", baselines=space.baselines)
            leaf = expand(rec.mixture.as_dict(), groups)
            trajectory.append((len(history), truth.loss(leaf), leaf))
    return trajectory


def cost_within(trajectory: list[tuple[int, float, dict]], reference: float, noise: float) -> tuple[int, float]:
    """Runs until the answer is within `noise` of `reference`, and its true loss then (the
    whole budget and the final answer when it never is)."""
    for runs, loss, _ in trajectory:
        if loss <= reference + noise:
            return runs, loss
    return trajectory[-1][0], trajectory[-1][1]


def one_change(truth: Truth, change: str, seed: int, runs: int) -> dict:
    rng = np.random.default_rng([seed, CHANGES.index(change)])
    picked = [DOMAINS[i] for i in rng.choice(len(DOMAINS), 2, replace=False)]
    old_leaves, new_leaves, swap_then = DOMAINS, DOMAINS, None
    if change == "add":
        old_leaves = [d for d in DOMAINS if d != picked[0]]
    elif change == "remove":
        new_leaves = [d for d in DOMAINS if d != picked[0]]
    else:
        swap_then = (picked[0], picked[1])
    earlier = search(truth, old_leaves, {}, runs, seed, swap=swap_then)[-1][2]
    changed = {"add": [], "remove": [], "update": picked}[change]
    unchanged = [d for d in new_leaves if d in old_leaves and d not in changed]
    groups = aggregate(earlier, unchanged, new_leaves, "kept")
    full = search(truth, new_leaves, {}, runs, seed + 1000)
    reuse = search(truth, new_leaves, groups, runs, seed + 1000, previous=previous_answer(earlier, new_leaves, groups))
    reference = full[-1][1]
    full_cost, _ = cost_within(full, reference, truth.noise)
    reuse_cost, reuse_loss = cost_within(reuse, reference, truth.noise)
    print(f"{change} seed {seed} ({', '.join(picked[:2 if change == 'update' else 1])}): full {full_cost} runs, "
          f"reuse {reuse_cost} runs (regret {reuse_loss - reference:+.4f}, noise {truth.noise:.4f}), "
          f"{len(coordinates(new_leaves, groups))} coordinates", flush=True)
    return {"full": full_cost, "reuse": reuse_cost, "regret": reuse_loss - reference}


PROXY_BUDGETS = [4, 8, 16]


def proxy_case(tokens: int, figures: dict) -> None:
    """Add a domain to a real workspace; a full re-search against `--reuse` (module doc)."""
    import tempfile

    from benchmarks._common import CORPUS, CORPUS_DOMAINS, search_and_answers
    from mixer.corpus import AddRequest
    from mixer.workspace import open_workspace
    from proxies.train import TrainConfig
    from search import driver
    from search.domains import add_domain
    from search.extra_runs import evaluate_extra
    from search.spec import Budget, ProxySpec, ReuseSpec, SearchSpec
    from store.records import RunRole

    train = TrainConfig(preset="tiny", tokens=tokens, seq_len=128, batch_size=16)
    with tempfile.TemporaryDirectory() as tmp:
        ws = open_workspace(Path(tmp) / "ws")
        for name in CORPUS_DOMAINS:
            if name != "wikipedia":
                add_domain(ws, AddRequest(name=name, sources=[CORPUS / f"{name}.jsonl"]))
        earlier = SearchSpec(name="earlier", backend="regmix", budget=Budget(runs=16, parallel=2),
                             proxy=ProxySpec(train=train))
        driver.run(ws, driver.create(ws, earlier).name)
        add_domain(ws, AddRequest(name="wikipedia", sources=[CORPUS / "wikipedia.jsonl"]))
        means, values = {}, []
        for label, reuse in (("full", None), ("reuse", ReuseSpec("earlier"))):
            spec = SearchSpec(name=label, backend="regmix", seed=1, budget=Budget(runs=16, parallel=2),
                              proxy=ProxySpec(train=train), reuse=reuse)
            session, answers = search_and_answers(ws, spec, PROXY_BUDGETS)
            mixtures = {f"rec{b}": a.mixture for b, a in answers.items()}
            extra = evaluate_extra(session, mixtures, RunRole.validation, seeds=3)
            for b in PROXY_BUDGETS:
                runs = [session.setup.target_value(r.result.values) for k, r in extra.items()
                        if k.startswith(f"rec{b}/")]
                means[(label, b)] = float(np.mean(runs))
                values.append(np.array(runs) - np.mean(runs))
            print(f"{label}: " + ", ".join(f"{b} runs {means[(label, b)]:.4f}" for b in PROXY_BUDGETS), flush=True)
    seed_std = float(np.sqrt(np.sum(np.square(values)) / (len(values) * 2)))   # 3 runs each: 2 dof
    reference = means[("full", 16)]
    cost = {label: next((b for b in PROXY_BUDGETS if means[(label, b)] <= reference + seed_std), 16)
            for label in ("full", "reuse")}
    figures |= {"proxy_reuse_cost_ratio_add": cost["reuse"] / cost["full"],
                "proxy_reuse_regret_add": means[("reuse", cost["reuse"])] - reference, "proxy_seed_std": seed_std,
                "proxy_full_runs_add": cost["full"], "proxy_reuse_runs_add": cost["reuse"]}


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--runs", type=int, default=48)
    p.add_argument("--quick", action="store_true", help="1 seed, 32 runs; --proxy at 100k tokens (same keys)")
    p.add_argument("--proxy", action="store_true", help="also the real proxy case on the shared corpus")
    p.add_argument("--tokens", type=int, default=300_000, help="tokens per tiny proxy run (--proxy)")
    args = p.parse_args()
    if not REGMIX.is_dir():
        sys.exit(f"RegMix tables not found at {REGMIX}")
    seeds, runs = (1, 32) if args.quick else (args.seeds, args.runs)
    start = time.perf_counter()
    truth = Truth()
    figures: dict = {"noise": truth.noise, "runs": runs, "seeds": seeds}
    for change in CHANGES:
        rows = [one_change(truth, change, seed, runs) for seed in range(seeds)]
        figures[f"reuse_cost_ratio_{change}"] = float(np.median([r["reuse"] / r["full"] for r in rows]))
        figures[f"reuse_regret_{change}"] = float(np.median([r["regret"] for r in rows]))
        figures[f"full_runs_{change}"] = float(np.median([r["full"] for r in rows]))
        figures[f"reuse_runs_{change}"] = float(np.median([r["reuse"] for r in rows]))
    if args.proxy:
        proxy_case(100_000 if args.quick else args.tokens, figures)
    figures["seconds"] = time.perf_counter() - start
    goals = {f"reuse_cost_ratio_{c}": "<= 0.4" for c in CHANGES} | {f"reuse_regret_{c}": "<= noise" for c in CHANGES}
    report("Reuse after a corpus change against a full re-search (RegMix's runs as the truth)", figures, goals,
           args.json)


if __name__ == "__main__":
    main()
