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
