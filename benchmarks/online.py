"""Online mixing against stratified sampling, as in Aioli's Table 1 (small scale): the five
domains of ../shared/corpus/ (byte tokenizer), 1m proxies, one token budget, `--seeds`
seeds; the target is the average held-out loss over the domains.

Per seed: a stratified run (uniform over domains, static); an Aioli run; a DoReMi proxy run
with the stratified run of the same seed as its reference model; and a fresh static run on
DoReMi's time-averaged weights. Runs are trained in-process with `train_proxy` (the same
trainer Ray runs), one at a time, with `--threads` threads.

Settings were fixed before measuring, scaled from the papers to a short run: Aioli at its
script's defaults (eta 0.2, one-hot factor 0.75, ema 0.1, normalised A) with lp_rounds 2,
lp_steps 4 and update_steps = steps / 4 (four rounds); DoReMi at its 120M script's eta 1,
eps 1e-3, updating every steps / 20.

Keys: `avg_loss_<method>` and `avg_loss_<method>_std` (over seeds) for stratified, aioli
and doremi_retrained; `aioli_vs_stratified` (mean difference, negative is better) and
`aioli_beats_stratified_by_1std`; `aioli_overhead` (Aioli's wall time over stratified's);
`aioli_probe_share` (the share of steps Aioli spent in probes);
the weight trajectories go to the JSON (`trajectory_<method>_s<seed>`).

    python benchmarks/online.py [--json out.json] [--tokens 1500000] [--seeds 3] [--first-seed 0]
        [--preset 1m] [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import CORPUS_DOMAINS, corpus_domains, parser, report  # noqa: E402
from mixer.mixture import Mixture  # noqa: E402
from mixer.online import Aioli, AioliConfig, DoReMi, DoReMiConfig  # noqa: E402
from proxies.train import TrainConfig, train_proxy  # noqa: E402

DOMAINS = CORPUS_DOMAINS


def average_loss(result) -> float:
    assert result.status == "done", result.error
    return float(np.mean([result.val_loss[d] for d in DOMAINS]))


def timed(train: TrainConfig, domains, mixture: Mixture, controller=None):
    start = time.perf_counter()
    result = train_proxy(train, domains, mixture, controller=controller)
    return result, time.perf_counter() - start


def probe_share(controller) -> float:
    """Share of the run's steps spent in LearnParams probes (Aioli's mixtures to measure, not
    its decisions)."""
    stages = controller.log.stages
    ends = [stage.step for stage in stages[1:]] + [controller.total_steps]
    probing = sum(end - stage.step for stage, end in zip(stages, ends) if stage.phase == "probe")
    return probing / controller.total_steps


def one_seed(domains, train: TrainConfig, seed: int, figures: dict) -> dict[str, tuple[float, float]]:
    train = replace(train, seed=seed)
    steps, per_step = train.steps, train.batch_size * train.seq_len
    out = {}
    stratified, out_wall = timed(train, domains, Mixture.uniform(DOMAINS))
    out["stratified"] = (average_loss(stratified), out_wall)
    aioli = Aioli(DOMAINS, AioliConfig(lp_rounds=2, lp_steps=4, update_steps=steps // 4, seed=seed), steps, per_step)
    result, wall = timed(train, domains, aioli.mixture, aioli)
    out["aioli"] = (average_loss(result), wall)
    out["aioli_probe_share"] = (probe_share(aioli), 0.0)
    figures[f"trajectory_aioli_s{seed}"] = result.online["stages"]
    doremi = DoReMi(DOMAINS, DoReMiConfig(update_steps=max(1, steps // 20)), steps, per_step,
                    reference=stratified.val_loss)
    result, wall = timed(train, domains, doremi.mixture, doremi)
    out["doremi_proxy"] = (average_loss(result), wall)
    figures[f"trajectory_doremi_s{seed}"] = result.online["stages"]
    figures[f"doremi_weights_s{seed}"] = doremi.average().as_dict()
    retrained, wall = timed(train, domains, doremi.average())
    out["doremi_retrained"] = (average_loss(retrained), wall)
    print(f"seed {seed}: " + ", ".join(f"{k} {v[0]:.4f} ({v[1]:.0f} s)" for k, v in out.items()), flush=True)
    return out


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--tokens", type=int, default=1_500_000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0, help="seeds run: first-seed .. first-seed + seeds - 1")
    p.add_argument("--preset", default="1m")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="1 seed, 300k tokens (same keys)")
    args = p.parse_args()
    if args.quick:
        args.seeds, args.tokens = 1, 300_000
    train = TrainConfig(preset=args.preset, tokens=args.tokens, seq_len=256, batch_size=16, threads=args.threads,
                        device="cpu")
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        domains = corpus_domains(Path(tmp))
        runs = [one_seed(domains, train, seed, figures)
                for seed in range(args.first_seed, args.first_seed + args.seeds)]
    summary: dict = {"tokens": args.tokens, "steps": train.steps,
                     "seeds": f"{args.first_seed}-{args.first_seed + args.seeds - 1}"}
    for method in ("stratified", "aioli", "doremi_proxy", "doremi_retrained"):
        losses = np.array([r[method][0] for r in runs])
        summary[f"avg_loss_{method}"] = float(losses.mean())
        summary[f"avg_loss_{method}_std"] = float(losses.std(ddof=1)) if len(losses) > 1 else 0.0
    summary["aioli_probe_share"] = float(np.mean([r["aioli_probe_share"][0] for r in runs]))
    gap = np.array([r["aioli"][0] - r["stratified"][0] for r in runs])
    summary["aioli_vs_stratified"] = float(gap.mean())
    summary["aioli_beats_stratified_by_1std"] = bool(-gap.mean() > summary["avg_loss_stratified_std"])
    summary["doremi_retrained_vs_stratified"] = float(np.mean([r["doremi_retrained"][0] - r["stratified"][0]
                                                               for r in runs]))
    summary["aioli_overhead"] = float(np.mean([r["aioli"][1] / r["stratified"][1] for r in runs]))
    report("Online mixing on the shared corpus", summary,
           {"aioli_beats_stratified_by_1std": "True (Aioli: 6 of 6 data sets)"}, None)
    if args.json:
        import json

        args.json.write_text(json.dumps({**summary, **figures}, indent=2, default=float))


if __name__ == "__main__":
    main()
