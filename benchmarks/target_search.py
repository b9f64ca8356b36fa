"""Searches for a user's own target text: do the answers beat the baselines on it?

    python benchmarks/target_search.py [--json out.json] [--quick] [--tokens 50000] [--seeds 3]
        [--references-only] [--targets a,b] [--backends regmix,mixing_law] [--option KEY=VALUE]

On the five domains of ../shared/corpus/, documents are removed before ingest (never
trained on) and become three eval-only target sets (`corpus add --eval-only`):

- `math_heldout`: held-out math documents (a target one source covers);
- `reviews70_wikipedia30`: a 70/30 blend of reviews and wikipedia text;
- `even3`: an even blend of shakespeare, speeches and math.

A blend is cut into 512-character pieces, interleaved so that every leading slice (what a
run measures: `eval_tokens`) holds the blend's shares. Each run of every search measures
all three sets. For each target, seed and backend (regmix, mixing_law): one 32-run search
(tiny proxies, 2 in parallel) minimising that set's loss; its 16-run answer is the
backend's guarded recommendation from the search's first 16 runs. Each answer, and the
uniform and token-share mixtures, is trained again with `--replicates` seeds, the same
seeds for every mixture of a search seed (the baselines once per seed, measured on every
set), and compared with search.compare's paired rule.

Figures per target, backend and budget (runs):
- `wins_vs_uniform_<target>_<backend>_<runs>`, `wins_vs_token_share_...`: fraction of
  seeds where the answer beats the baseline by more than the std of the paired
  per-seed differences;
- `gain_vs_best_baseline_...`: mean over seeds of the answer's gain over the better
  baseline, in units of that comparison's seed std (above 1: beyond seed noise);
- `mass_on_sources_<target>`: mean weight the 32-run answers (both backends, every seed)
  put on the domains the target was drawn from;
- `max_weight_<target>`: the largest weight of any 32-run answer (a real mixture stays
  below 0.8 on a blend);
- `wins_vs_best_baseline_<target>_source_shares`, `gain_vs_best_baseline_<target>_source_shares`:
  the same for the target's own source shares (70/30 reviews/wikipedia for that blend),
  trained beside the baselines: what a search that knew how the target was made would
  gain. Where they do not beat the baselines beyond seed noise, no search is expected to
  at this scale. `--references-only` trains these references and runs no search.
Goal: the blends' 32-run answers beat both baselines beyond seed noise in at least 2 of
3 seeds. `--quick` (one seed, 2 replicates, 8k eval tokens) runs the same keys in minutes.

Scale: 50k tokens per run. A search can only be judged where something beats the
baselines: at 300k tokens not even the 70/30 blend's own shares do (the references,
benchmarks/README.md), at 50k they do by 3.7 seed stds.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import CORPUS, CORPUS_DOMAINS, parser, report, search_and_answers  # noqa: E402
from mixer.config import parse_pairs  # noqa: E402
from mixer.corpus import AddRequest, add_corpus  # noqa: E402
from mixer.errors import MixerError  # noqa: E402
from mixer.ingest import IngestConfig  # noqa: E402
from mixer.mixture import Mixture  # noqa: E402
from mixer.sources import ReadOptions, ReadStats, read_documents  # noqa: E402
from mixer.workspace import Workspace, open_workspace  # noqa: E402
from proxies.train import TrainConfig  # noqa: E402
from search import driver  # noqa: E402
from search.backends import backend_config  # noqa: E402
from search.compare import SeedStats, verdict  # noqa: E402
from search.extra_runs import evaluate_extra  # noqa: E402
from search.session import SearchSession  # noqa: E402
from search.spec import Budget, ProxySpec, SearchSpec  # noqa: E402
from search.targets import Target  # noqa: E402
from store.records import RunRole  # noqa: E402

TARGETS = {"math_heldout": {"math": 1.0},
           "reviews70_wikipedia30": {"reviews": 0.7, "wikipedia": 0.3},
           "even3": {"shakespeare": 1 / 3, "speeches": 1 / 3, "math": 1 / 3}}
BACKENDS = ["regmix", "mixing_law"]
BUDGETS = [16, 32]
HELD_CHARS = 160_000     # text removed from each domain before ingest, for the targets
PIECE_CHARS = 512


def held_out_split(name: str) -> tuple[list[str], list[str]]:
    """A domain's documents -> (those ingested, those removed for targets): every k-th
    document, k chosen so that the removed hold about `HELD_CHARS`."""
    docs = list(read_documents([CORPUS / f"{name}.jsonl"], ReadOptions(), ReadStats()))
    step = max(2, int(sum(map(len, docs)) / HELD_CHARS))
    return ([d for i, d in enumerate(docs) if i % step != step - 1],
            [d for i, d in enumerate(docs) if i % step == step - 1])


def blend(held: dict[str, list[str]], shares: dict[str, float]) -> list[str]:
    """512-character pieces of the sources' removed text, interleaved so that every prefix
    holds the shares (each next piece from the source furthest below its share)."""
    pieces = {n: [t[i:i + PIECE_CHARS] for t in held[n] for i in range(0, len(t), PIECE_CHARS)] for n in shares}
    taken = {n: 0 for n in shares}
    out = []
    while all(taken[n] < len(pieces[n]) for n in shares):
        total = sum(taken.values()) + 1
        source = min(shares, key=lambda n: taken[n] / total - shares[n])
        out.append(pieces[source][taken[source]])
        taken[source] += 1
    return out


def build_workspace(root: Path) -> Workspace:
    ws = open_workspace(root)
    held = {}
    for name in CORPUS_DOMAINS:
        kept, held[name] = held_out_split(name)
        add_corpus(ws, AddRequest(name=name, sources=[_write(root.parent / f"{name}.jsonl", kept)]))
    for target, shares in TARGETS.items():
        pieces = blend(held, shares)
        add_corpus(ws, AddRequest(name=target, sources=[_write(root.parent / f"{target}.jsonl", pieces)],
                                  ingest=IngestConfig(eval_only=True)))
    return ws


def _write(path: Path, docs: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    return path


def _spec(name: str, target: str, backend: str, seed: int, args) -> SearchSpec:
    train = TrainConfig(preset="tiny", tokens=args.tokens, seq_len=128, batch_size=16, eval_tokens=args.eval_tokens)
    options = args.options if backend != "random" else {}
    return SearchSpec(name=name, backend=backend, options=options, seed=seed, target=Target(target),
                      budget=Budget(runs=max(BUDGETS), parallel=2), proxy=ProxySpec(train=train, domains=CORPUS_DOMAINS))


def _finals(extra: dict, labels) -> dict[str, list[dict]]:
    """label -> the final values of its replicate runs, in seed order."""
    return {label: [r.result.values for key, r in sorted(extra.items()) if key.split("/")[0] == label]
            for label in labels}


def references(ws: Workspace, seed: int, args) -> dict[str, list[dict]]:
    """The seed's reference mixtures, trained with the replicate seeds every search of this
    seed uses (paired): uniform, token share, and each target's own source shares
    (`sources-<target>`, what a search would answer if it knew how the target was made)."""
    session = SearchSession(ws, driver.create(ws, _spec(f"references-s{seed}", "avg", "random", seed, args)))
    space = session.setup.space
    mixtures = {b: Mixture(dict(zip(space.domains, x))) for b, x in space.baselines.items()}
    mixtures |= {f"sources-{t}": Mixture(shares) for t, shares in TARGETS.items()}
    return _finals(evaluate_extra(session, mixtures, RunRole.baseline, seeds=args.replicates), mixtures)


def against_baselines(finals: dict[str, list[dict]], target: str, label: str) -> dict:
    """`label`'s replicates against uniform's and token share's on `target`, paired by seed:
    its mean, theirs, whether it beats each beyond seed noise (search.compare's rule), and
    its gain over the better one in units of that comparison's seed std."""
    value = lambda name: SeedStats(name, tuple(Target(target).value(f) for f in finals[name]))  # noqa: E731
    answer, uniform, share = value(label), value("uniform"), value("token-share")
    against_best = verdict(answer, min((uniform, share), key=lambda s: s.mean))
    return {"mean": answer.mean, "uniform": uniform.mean, "token_share": share.mean,
            "win_uniform": verdict(answer, uniform).significant, "win_token_share": verdict(answer, share).significant,
            "win_best": against_best.significant, "gain_sd": against_best.gain / max(against_best.seed_std, 1e-9)}


def one_search(ws: Workspace, target: str, backend: str, seed: int, args, refs: dict) -> dict:
    """A 32-run search minimising `target`, its 16- and 32-run answers retrained with the
    replicate seeds, compared with the seed's references."""
    start = time.perf_counter()
    session, recs = search_and_answers(ws, _spec(f"{target}-{backend}-s{seed}", target, backend, seed, args), BUDGETS)
    answers = {b: rec.mixture for b, rec in recs.items()}
    mixtures = {f"rec{b}": m for b, m in answers.items()}
    finals = _finals(evaluate_extra(session, mixtures, RunRole.validation, seeds=args.replicates), mixtures) | refs
    out = {"wall_s": time.perf_counter() - start}
    for budget, mixture in answers.items():
        out[budget] = {"mixture": mixture.as_dict()} | against_baselines(finals, target, f"rec{budget}")
    return out


def summarise(results: dict) -> dict:
    figures = {}
    for target, by_backend in results.items():
        for backend, by_seed in by_backend.items():
            for budget in BUDGETS:
                rows = [r[budget] for r in by_seed]
                key = f"{target}_{backend}_{budget}"
                figures[f"wins_vs_uniform_{key}"] = float(np.mean([r["win_uniform"] for r in rows]))
                figures[f"wins_vs_token_share_{key}"] = float(np.mean([r["win_token_share"] for r in rows]))
                figures[f"gain_vs_best_baseline_{key}"] = float(np.mean([r["gain_sd"] for r in rows]))
        answers = [r[max(BUDGETS)]["mixture"] for by_seed in by_backend.values() for r in by_seed]
        figures[f"mass_on_sources_{target}"] = float(np.mean([sum(m.get(n, 0.0) for n in TARGETS[target])
                                                              for m in answers]))
        figures[f"max_weight_{target}"] = float(max(max(m.values()) for m in answers))
    return figures


def checked_subsets(p, args) -> None:
    """--targets and --backends as lists of known names, --option as a mapping every chosen
    backend accepts; anything else ends in one usage line."""
    args.targets, args.backends = args.targets.split(","), args.backends.split(",")
    for given, known, flag in ((args.targets, TARGETS, "--targets"), (args.backends, BACKENDS, "--backends")):
        if unknown := [name for name in given if name not in known]:
            p.error(f"{flag}: unknown {', '.join(unknown)} (choose from {', '.join(known)})")
    try:
        args.options = parse_pairs(args.option, "--option", split_commas=False, form="KEY=VALUE")
        for backend in args.backends:
            backend_config(backend, args.options)
    except MixerError as error:
        p.error(str(error))


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--quick", action="store_true", help="one seed, 2 replicates, 8k eval tokens: the same keys")
    p.add_argument("--tokens", type=int, default=50_000, help="tokens per tiny proxy run")
    p.add_argument("--eval-tokens", type=int, default=32_768, help="held-out tokens per domain and set at a run's end")
    p.add_argument("--seeds", type=int, default=3, help="search seeds per target and backend")
    p.add_argument("--replicates", type=int, default=3, help="replicate seeds per measured mixture")
    p.add_argument("--targets", default=",".join(TARGETS), help="which targets to search for (comma list)")
    p.add_argument("--backends", default=",".join(BACKENDS), help="which backends search (comma list)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a backend option, for every search")
    p.add_argument("--references-only", action="store_true",
                   help="train the references (baselines, each target's source shares) and run no search")
    args = p.parse_args()
    checked_subsets(p, args)
    if args.quick:
        args.seeds, args.replicates, args.eval_tokens = 1, 2, 8_192
    if not CORPUS.is_dir():
        sys.exit(f"the shared corpus is not at {CORPUS}")
    start = time.perf_counter()
    results: dict = {}
    results_refs: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        ws = build_workspace(Path(tmp) / "ws")
        for seed in range(args.seeds):
            refs = references(ws, seed, args)
            for target in TARGETS:
                gain = against_baselines(refs, target, f"sources-{target}")
                results_refs.setdefault(target, []).append(gain)
                print(f"{target} seed {seed}: its source shares {gain['mean']:.4f} ({gain['gain_sd']:+.1f} sd); "
                      f"uniform {gain['uniform']:.4f} token-share {gain['token_share']:.4f}", flush=True)
            for target in args.targets if not args.references_only else ():
                for backend in args.backends:
                    r = one_search(ws, target, backend, seed, args, refs)
                    results.setdefault(target, {}).setdefault(backend, []).append(r)
                    top = r[max(BUDGETS)]
                    print(f"{target} {backend} seed {seed}: " + "; ".join(
                        f"{b} runs {r[b]['mean']:.4f} ({r[b]['gain_sd']:+.1f} sd)" for b in BUDGETS)
                        + f"; uniform {top['uniform']:.4f} token-share {top['token_share']:.4f}; answer "
                        + ", ".join(f"{n} {w:.2f}" for n, w in sorted(top["mixture"].items(), key=lambda i: -i[1])
                                    if w >= 0.01) + f"; {r['wall_s']:.0f} s", flush=True)
    figures = summarise(results) | {
        f"{key}_{target}_source_shares": float(np.mean([g[field] for g in gains]))
        for target, gains in results_refs.items() for key, field in (("wins_vs_best_baseline", "win_best"),
                                                                     ("gain_vs_best_baseline", "gain_sd"))}
    figures["total_wall_s"] = time.perf_counter() - start
    figures["tokens"], figures["seeds"], figures["replicates"] = args.tokens, args.seeds, args.replicates
    figures["eval_tokens"] = args.eval_tokens
    goals = {f"wins_vs_{b}_{t}_{k}_32": ">= 0.67" for t in TARGETS if t != "math_heldout" for k in BACKENDS
             for b in ("uniform", "token_share")} | {f"max_weight_{t}": "< 0.8" for t in TARGETS if t != "math_heldout"}
    report("Searches for eval-only targets (5 domains, tiny proxies)", figures, goals, args.json)


if __name__ == "__main__":
    main()
