"""How far down can a user go? The same 16 Dirichlet mixtures (around the token-share prior,
the search's sampler) of the five domains of ../shared/corpus/ trained at two scales with
2 seeds each (a seed sets initialisation and data order), target = average held-out loss.

Keys: `spearman_tiny_vs_1m` (rank correlation of the mixtures' means across scales),
`seed_std_tiny`, `seed_std_1m` (pooled std of one run over the mixtures), `spread_1m`
(max minus min mixture mean at the large scale), `snr_1m` (spread over seed std: above
about 3, a search at that scale can tell its best mixtures from its worst).
`spearman_interval_width_<N>_seeds`: the width of `mixer transfer`'s 95% bootstrap interval
of the rank correlation at these seeds; `seeds_recommended`: what `mixer transfer` would ask
for (search.transfer.seeds_needed) at the measured small-scale seed noise and spread, before
training; `seeds_recommended_large`: what its report asks for afterwards, at the larger
scale's own noise and spread (search.transfer.TransferReport.large_seeds_wanted).

Default: tiny against 1m, 300k tokens each, on CPU (about 20 minutes on 2 cores,
in-process `train_proxy`, one run at a time). `--full`: 5m against 20m at 20M tokens each
on a GPU (the keys then read `spearman_5m_vs_20m` and so on).

    python benchmarks/transfer.py [--json out.json] [--full]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import CORPUS_DOMAINS, corpus_domains, parser, report  # noqa: E402
from mixer.mixture import Mixture  # noqa: E402
from mixer.sampling import SamplerConfig, draw_within_bounds, prior_from_tokens  # noqa: E402
from proxies.train import TrainConfig, train_proxy  # noqa: E402

DOMAINS = CORPUS_DOMAINS


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--full", action="store_true", help="5m vs 20m at 20M tokens on a GPU")
    p.add_argument("--mixtures", type=int, default=16)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--tokens", type=int, default=300_000, help="tokens per run at both scales (CPU mode)")
    p.add_argument("--quick", action="store_true", help="6 mixtures at 100k tokens (same keys)")
    args = p.parse_args()
    if args.quick:
        args.mixtures, args.tokens = 6, 100_000
    scales = ([("5m", 20_000_000), ("20m", 20_000_000)] if args.full else
              [("tiny", args.tokens), ("1m", args.tokens)])
    device, threads = ("cuda", None) if args.full else ("cpu", 2)
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        domains = corpus_domains(Path(tmp))
        prior = prior_from_tokens({n: domains[n].meta.n_tokens for n in DOMAINS})
        X = draw_within_bounds(np.array(list(prior.values())), args.mixtures, np.random.default_rng(0), SamplerConfig())
        means, stds = {}, {}
        for preset, tokens in scales:
            start = time.perf_counter()
            values = np.zeros((args.mixtures, args.seeds))
            for i, x in enumerate(X):
                for seed in range(args.seeds):
                    cfg = TrainConfig(preset=preset, tokens=tokens, seq_len=256, batch_size=16, seed=seed,
                                      device=device, threads=threads)
                    result = train_proxy(cfg, domains, Mixture.normalized(dict(zip(DOMAINS, x))))
                    assert result.status == "done", result.error
                    values[i, seed] = np.mean([result.val_loss[d] for d in DOMAINS])
                print(f"{preset}: mixture {i + 1}/{args.mixtures} {values[i].round(4)}", flush=True)
            means[preset], stds[preset] = values.mean(axis=1), float(np.sqrt(values.var(axis=1, ddof=1).mean()))
            figures[f"seconds_{preset}"] = time.perf_counter() - start
            figures[f"values_{preset}"] = values.round(5).tolist()
    from scipy.stats import spearmanr

    from search.transfer import report as transfer_report, seeds_needed
    from search.compare import SeedStats
    from search.targets import Target
    from search.transfer import MixtureScales

    (small, _), (large, _) = scales
    rows = [MixtureScales(f"m{i}", Mixture.normalized(dict(zip(DOMAINS, x))),
                          SeedStats(f"m{i}", tuple(figures[f"values_{small}"][i])),
                          SeedStats(f"m{i}", tuple(figures[f"values_{large}"][i]))) for i, x in enumerate(X)]
    checked = transfer_report("bench", small, large, rows, Target(), [])   # `mixer transfer`'s report
    lo, hi = checked.spearman_interval
    summary = {f"spearman_{small}_vs_{large}": float(spearmanr(means[small], means[large])[0]),
               f"spearman_interval_width_{args.seeds}_seeds": float(hi - lo),
               "seeds_recommended": seeds_needed(stds[small], float(np.std(means[small], ddof=1))),
               "seeds_recommended_large": checked.large_seeds_wanted,
               f"seed_std_{small}": stds[small], f"seed_std_{large}": stds[large],
               f"spread_{small}": float(np.ptp(means[small])), f"spread_{large}": float(np.ptp(means[large])),
               f"snr_{large}": float(np.ptp(means[large]) / stds[large]),
               f"snr_{small}": float(np.ptp(means[small]) / stds[small])}
    report(f"Transfer {small} -> {large}: {args.mixtures} mixtures x {args.seeds} seeds", summary,
           {f"snr_{large}": "> 3: the scale separates mixtures"}, None)
    if args.json:
        import json

        args.json.write_text(json.dumps({**summary, **figures}, indent=2))


if __name__ == "__main__":
    main()
