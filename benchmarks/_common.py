"""Shared helpers for benchmark scripts: timing, tables, --json output."""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", type=Path, help="write the figures to this file")
    return p


def best_of(fn, repeats: int = 5) -> float:
    """Smallest wall time of `repeats` calls (the least disturbed by a shared machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {gpu}"


def report(title: str, figures: dict, goals: dict[str, str], json_path: Path | None) -> None:
    table = Table(title=f"{title} ({machine()})")
    for col in ("figure", "value", "goal"):
        table.add_column(col)
    for key, value in figures.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value), goals.get(key, ""))
    Console().print(table)
    if json_path:
        json_path.write_text(json.dumps({**figures, "machine": machine()}, indent=2))


CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
CORPUS_DOMAINS = ["math", "reviews", "shakespeare", "speeches", "wikipedia"]


def corpus_domains(root: Path) -> dict:
    """The five domains of ../shared/corpus/ ingested into a workspace under `root`, opened."""
    import sys

    from mixer.corpus import AddRequest, add_corpus
    from mixer.domain import open_domains
    from mixer.workspace import open_workspace

    if not CORPUS.is_dir():
        sys.exit(f"shared corpus not found at {CORPUS}")
    ws = open_workspace(root / "ws")
    for name in CORPUS_DOMAINS:
        add_corpus(ws, AddRequest(name=name, sources=[CORPUS / f"{name}.jsonl"]))
    return open_domains(ws.domains_dir)


def search_and_answers(ws, spec, budgets: list[int]):
    """Create and run the search `spec` (its budget: the largest of `budgets`); returns its
    session and, per budget b, the backend's guarded answer from the search's first b runs
    (what a b-run search of the same seed would have measured, give or take its design)."""
    from search import driver
    from search.history import History
    from search.recommend import recommend_from
    from search.session import SearchSession

    record = driver.create(ws, spec)
    driver.run(ws, record.name)
    session = SearchSession(ws, record)
    state, setup = session.load(), session.setup
    own = state.own.sort_values("run_id")
    answers = {}
    for budget in budgets:
        history = History.from_runs(setup.space.domains, own.iloc[:budget], setup.target, state.costs, setup.averaged)
        answers[budget] = recommend_from(setup, session.backend.fit(history))
    return session, answers
