"""Rendering results for a terminal or a file: rich tables, CSV, JSON, Parquet.

The CLI's only output helpers; nothing here computes anything.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from mixer.errors import MixerError
from mixer.outputs import check_output, write_atomically

console = Console()
console.soft_wrap = not console.is_terminal   # a terminal wraps prose between words; a log keeps whole lines


def cell(value) -> str:
    """One table cell: floats to 6 significant digits, mixtures as their largest weights."""
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.6g}"
    if isinstance(value, Mapping):
        top = sorted(((v, k) for k, v in value.items() if v), reverse=True)
        text = " ".join(f"{k}={v:.3f}" for v, k in top[:4])
        return text + (f" +{len(top) - 4}" if len(top) > 4 else "")
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(cell(v) for v in value)
    if value is None or pd.isna(value):
        return ""
    return str(value)


def float_column(values: pd.Series) -> Callable[[float], str]:
    """How one column of floats is written, the same way for every row: the significant
    digits that tell its values apart (at least 4, at most 6), as fixed decimals when the
    column's magnitudes allow (`0.00598` beside `0.03279`, not `0.00597833`), else
    scientific; whole numbers as integers."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return cell
    if np.all(finite == np.round(finite)) and np.abs(finite).max() < 1e15:
        return lambda v: "" if pd.isna(v) else f"{v:.0f}"
    distinct = np.unique(finite)
    largest = float(np.abs(finite).max())
    gap = float(np.diff(distinct).min()) if len(distinct) > 1 else 0.0
    digits = 4 if gap == 0 or largest == 0 else int(np.clip(np.ceil(np.log10(largest / gap)) + 1, 4, 6))
    nonzero = np.abs(finite[finite != 0])
    if largest == 0 or (largest < 1e6 and nonzero.min() >= 1e-3 * largest and largest >= 1e-4):
        decimals = max(0, digits - 1 - int(np.floor(np.log10(largest)))) if largest else 0
        return lambda v: "" if pd.isna(v) else f"{v:.{decimals}f}"
    return lambda v: "" if pd.isna(v) else f"{v:.{digits}g}"


def render_frame(frame: pd.DataFrame, title: str | None = None) -> None:
    """A table that never splits a number or a word: numeric columns keep their full width,
    text columns wrap between words; when even that does not fit the terminal, each row is
    printed as a block of `column  value` lines (psql's expanded display). Piped (not a
    terminal), the table keeps its natural width. Each float column has one format
    (`float_column`)."""
    formats = [float_column(frame[c]) if pd.api.types.is_float_dtype(frame[c]) else cell for c in frame.columns]
    cells = [[format_(v) for format_, v in zip(formats, row)] for row in frame.itertuples(index=False)]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]
    widths = [max([_longest_word(str(col))] + [len(row[i]) if numeric[i] else _longest_word(row[i])
                                                for row in cells]) for i, col in enumerate(frame.columns)]
    if console.is_terminal and sum(widths) + 3 * len(widths) + 1 > console.width and len(cells):
        _print_expanded(list(map(str, frame.columns)), cells, title)
        return
    if title:
        console.print(title)        # above the table: a title never wraps to a narrow table's width
    table = Table(show_lines=False)
    for i, col in enumerate(frame.columns):
        table.add_column(str(col), overflow="fold", no_wrap=numeric[i], min_width=widths[i],
                         justify="right" if numeric[i] else "left")
    for row in cells:
        table.add_row(*row)
    _print(table)


def _longest_word(text: str) -> int:
    return max((len(word) for word in text.split()), default=0)


def _print_expanded(columns: list[str], cells: list[list[str]], title: str | None) -> None:
    if title:
        console.print(title)
    for number, row in enumerate(cells, start=1):
        table = Table(title=f"row {number}", show_header=False, title_justify="left")
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        for column, value in zip(columns, row):
            table.add_row(column, value)
        console.print(table)


def _print(table: Table) -> None:
    if console.is_terminal:
        console.print(table)
        return
    unbounded = console.options.update(max_width=1_000_000)
    natural = Measurement.get(console, unbounded, table).maximum
    width = console.width
    console.width = max(width, natural)
    try:
        console.print(table)
    finally:
        console.width = width


def render_rows(rows: list[dict], title: str | None = None) -> None:
    render_frame(pd.DataFrame(rows), title=title)


def render_pairs(pairs: Mapping[str, object], title: str | None = None) -> None:
    """A two-column key/value table."""
    table = Table(title=title, show_header=False)
    table.add_column(overflow="fold")
    table.add_column(overflow="fold")
    for key, value in pairs.items():
        table.add_row(str(key), cell(value))
    _print(table)


def render_mixture(mixture: Mapping[str, float], title: str) -> None:
    weights = sorted(mixture.items(), key=lambda kv: -kv[1])
    render_frame(pd.DataFrame([{"domain": n, "weight": w} for n, w in weights if w > 0]), title=title)


def write_frame(frame: pd.DataFrame, fmt: str, output: Path | None) -> None:
    """Render as a rich table, CSV or JSON on stdout, or write Parquet/CSV/JSON to a file."""
    if output is not None:
        _write_file(frame, output)
    elif fmt == "csv":
        _json_cells(frame).to_csv(sys.stdout, index=False)
    elif fmt == "json":
        print(_with_json_values(frame).to_json(orient="records", indent=2, default_handler=str, date_format="iso"))
    elif fmt == "table":
        render_frame(frame)
    else:
        raise MixerError(f"--format {fmt}: unknown format (use table, csv or json)")


def _with_json_values(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns that hold JSON text (`frame.attrs["json_columns"]`, as `mixer sql` marks
    them) as the values the text holds, so that JSON output does not quote them again."""
    import json

    columns = [c for c in frame.attrs.get("json_columns", []) if c in frame.columns]
    if not columns:
        return frame
    return frame.assign(**{c: [None if v is None else json.loads(v) for v in frame[c]] for c in columns})


def _json_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Maps and lists (mixtures, per-domain values) as JSON text, not Python reprs."""
    import json

    def as_json(value):
        if isinstance(value, Mapping):
            return json.dumps(dict(value), sort_keys=True)
        if isinstance(value, (list, tuple)):
            return json.dumps(list(value))
        return value

    return frame.apply(lambda col: col.map(as_json) if col.dtype == object else col)


def _write_file(frame: pd.DataFrame, output: Path) -> None:
    check_output(output, (".parquet", ".csv", ".json"))
    suffix = output.suffix.lower()
    if suffix == ".parquet":
        write_atomically(output, lambda tmp: frame.to_parquet(tmp, index=False))
    elif suffix == ".csv":
        write_atomically(output, lambda tmp: _json_cells(frame).to_csv(tmp, index=False))
    else:
        text = frame.to_json(orient="records", indent=2, default_handler=str, date_format="iso")
        write_atomically(output, lambda tmp: tmp.write_text(text))
