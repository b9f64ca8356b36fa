"""MixtureLoader: batch assembly against memcpy, blend build time, blend exactness against
i.i.d. draws, Megatron's greedy blend and Hugging Face `interleave_datasets`, ingest speed.

    python benchmarks/loader.py [--json out.json] [--device cuda] [--quick]

`--quick`: 10 timed steps, best of 2 (same keys).

Data: the five domains of ../shared/corpus when present, else built-in data.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import best_of, parser, report  # noqa: E402
from mixer import Mixture  # noqa: E402
from mixer.blend import blend_order, max_prefix_deviation  # noqa: E402
from mixer.corpus import AddRequest, add_corpus  # noqa: E402
from mixer.domain import open_domains  # noqa: E402
from mixer.loader import LoaderConfig, MixtureLoader  # noqa: E402
from mixer.workspace import open_workspace  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SEQ_LEN, BATCH = 2048, 64


def build_workspace(root: Path) -> tuple[dict, float]:
    ws = open_workspace(root)
    requests = ([AddRequest(name=p.stem, sources=[p]) for p in sorted(CORPUS.glob("*.jsonl"))]
                if CORPUS.is_dir() else
                [AddRequest(name=b, builtin=b, builtin_max_bytes=8_000_000) for b in ("python", "cpp", "docs", "licenses")])
    start, n_bytes = time.perf_counter(), 0
    for req in requests:
        n_bytes += add_corpus(ws, req).n_bytes
    return open_domains(ws.domains_dir), n_bytes / 1e6 / (time.perf_counter() - start)


def consume(loader: MixtureLoader, steps: int) -> None:
    """Take batches as a training loop does: each is dropped before the next."""
    for _ in range(steps):
        next(loader)


def contiguous_copies(domains: dict, n_tokens: int, steps: int) -> None:
    """The baseline: the same tokens per batch as one contiguous copy out of the token file
    into an int64 batch (the best any loader can do), at offsets that move through the file
    so the source is not cache-resident."""
    source = np.asarray(max(domains.values(), key=lambda d: d.meta.n_tokens).tokens)
    out = np.empty(n_tokens, dtype=np.int64)
    offsets = np.random.default_rng(0).integers(0, len(source) - n_tokens, size=steps)
    for off in offsets:
        np.copyto(out, source[off:off + n_tokens])


def megatron_greedy(weights: np.ndarray, n: int) -> np.ndarray:
    """Megatron-LM's build_blending_indices (helpers.cpp), transcribed: pick the largest
    error w_d * (i + 1) - c_d, with its max(i, 1) quirk."""
    counts = np.zeros(len(weights))
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        d = int(np.argmax(weights * max(i, 1) - counts))
        out[i] = d
        counts[d] += 1
    return out


def hf_interleave(weights: np.ndarray, n: int) -> np.ndarray:
    import datasets

    sources = [datasets.Dataset.from_dict({"d": [d] * n}) for d in range(len(weights))]
    mixed = datasets.interleave_datasets(sources, probabilities=weights.tolist(), seed=0,
                                         stopping_strategy="first_exhausted")
    return np.asarray(mixed["d"][:n])


def cuda_assembly(domains: dict, mixture: Mixture, placement: str, steps: int = 200) -> float:
    """Tokens/s of batches landing on the GPU (synchronised at the end)."""
    import torch

    loader = MixtureLoader(domains, mixture, LoaderConfig(seq_len=SEQ_LEN, batch_size=BATCH, device="cuda",
                                                          placement=placement))
    consume(loader, 5)
    torch.cuda.synchronize()
    start = time.perf_counter()
    consume(loader, steps)
    torch.cuda.synchronize()
    return steps * BATCH * (SEQ_LEN + 1) / (time.perf_counter() - start)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--device", default="cpu", help="cpu, or cuda to add the GPU loader paths")
    p.add_argument("--quick", action="store_true", help="10 timed steps, best of 2 (same keys)")
    args = p.parse_args()
    steps, repeats = (10, 2) if args.quick else (50, 5)
    with tempfile.TemporaryDirectory() as tmp:
        domains, ingest_mb_s = build_workspace(Path(tmp) / "ws")
        tokens = {n: d.meta.n_tokens for n, d in domains.items()}
        mixture = Mixture.normalized(tokens)
        loader = MixtureLoader(domains, mixture, LoaderConfig(seq_len=SEQ_LEN, batch_size=BATCH))
        next(loader)
        per_batch = BATCH * (SEQ_LEN + 1)
        t_cold = best_of(lambda: consume(loader, steps), 1) / steps
        for d in domains.values():  # map every page once: what a run sees after its first pass
            int(np.asarray(d.tokens)[::1024].sum())
            np.asarray(d.tokens).max()
        t_assembly = best_of(lambda: consume(loader, steps), repeats) / steps
        t_memcpy = best_of(lambda: contiguous_copies(domains, per_batch, steps), repeats) / steps

        weights = mixture.vector(loader.names)
        blend_order(weights, 1000)  # compile
        t_blend = best_of(lambda: blend_order(weights, 100_000_000), 1)
        n = 200_000
        figures = {
            "assembly_tokens_per_s": per_batch / t_assembly,
            "memcpy_tokens_per_s": per_batch / t_memcpy,
            "assembly_vs_memcpy": t_memcpy / t_assembly,
            "assembly_vs_memcpy_cold_pages": t_memcpy / t_cold,
            "blend_build_s_1e8": t_blend,
            "max_prefix_dev_mixer": max_prefix_deviation(blend_order(weights, 10_000_000), weights),
            "max_prefix_dev_megatron_greedy": max_prefix_deviation(megatron_greedy(weights, n), weights),
            "max_prefix_dev_iid": max_prefix_deviation(
                np.random.default_rng(0).choice(len(weights), size=10_000_000, p=weights), weights),
            "ingest_mb_per_s": ingest_mb_s,
        }
        try:
            figures["max_prefix_dev_hf_interleave"] = max_prefix_deviation(hf_interleave(weights, n), weights)
        except ImportError:
            print("datasets is not installed (pip install -e '.[bench]'): no Hugging Face figure")
        if args.device == "cuda":
            for placement in ("device", "host"):
                figures[f"assembly_tokens_per_s_cuda_{placement}"] = cuda_assembly(domains, mixture, placement)
    report("MixtureLoader", figures, {"assembly_vs_memcpy": ">= 0.5", "blend_build_s_1e8": "< 5",
                                      "max_prefix_dev_mixer": "<= 1"}, args.json)


if __name__ == "__main__":
    main()
