"""Torch on one thread for the search's own small models (the GP, the mixing laws).

Their matrices are a few hundred rows: on 2 cores, a second intra-op thread cost more than
it saved even on a quiet machine, and on a busy one (a driver beside Ray's workers) a GP fit
took 50 times as long (benchmarks/README.md). One thread also makes a fit independent of
the machine's thread count, so a search proposes the same runs on a laptop and a node.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with torch on one intra-op thread; the caller's setting is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
