"""Tables in a narrow terminal and in pipes never split a number."""

import io
import re

import pandas as pd
from rich.console import Console

import mixer.render as render


def _rendered(monkeypatch, terminal: bool, width: int = 60) -> str:
    out = io.StringIO()
    monkeypatch.setattr(render, "console", Console(file=out, width=width, force_terminal=terminal, soft_wrap=True,
                                                   color_system=None))
    frame = pd.DataFrame({"preset": ["20m", "moe-20m"], "description of the preset in words": ["x " * 30] * 2,
                          "total": [19571712, 123456789012], "tokens_per_s": [1234567.891, 0.000123456]})
    render.render_frame(frame, title="presets")
    return out.getvalue()


def test_numbers_stay_whole_in_a_narrow_terminal(monkeypatch):
    text = _rendered(monkeypatch, terminal=True)
    for number in ("19571712", "123456789012", "1.235e+06", "0.0001235"):   # one format per column
        assert number in text, text
    assert max(len(line) for line in text.splitlines()) <= 60


def test_piped_output_keeps_every_row_on_one_line(monkeypatch):
    text = _rendered(monkeypatch, terminal=False)
    rows = [line for line in text.splitlines() if re.search(r"\b(20m|moe-20m)\b", line)]
    assert len(rows) == 2 and all("19571712" in text for _ in rows)
    assert sum(1 for line in text.splitlines() if "x x" in line) == 2  # the long text is not folded either


def test_csv_writes_maps_as_json(tmp_path, capsys):
    import json

    frame = pd.DataFrame({"run_id": ["r1"], "mixture": [{"web": 0.25, "code": 0.75}], "target": [2.5]})
    render.write_frame(frame, "csv", None)
    out = capsys.readouterr().out
    row = pd.read_csv(io.StringIO(out)).iloc[0]
    assert json.loads(row.mixture) == {"code": 0.75, "web": 0.25} and row.target == 2.5
    render.write_frame(frame, "table", tmp_path / "f.csv")
    assert json.loads(pd.read_csv(tmp_path / "f.csv").mixture[0]) == {"code": 0.75, "web": 0.25}


def test_a_table_too_wide_for_the_terminal_becomes_one_block_per_row(monkeypatch):
    """Mixtures and timestamps are words that must not split: rather than squeeze columns
    to nothing, each row is printed as `column  value` lines."""
    out = io.StringIO()
    monkeypatch.setattr(render, "console", Console(file=out, width=80, force_terminal=True, soft_wrap=True,
                                                   color_system=None))
    frame = pd.DataFrame({"run_id": ["s1/replicate/0000/seed-1", "s1/0001"], "status": ["done", "done"],
                          "fidelity": ["tiny:16000", "tiny:16000"], "target_value": [1.70059, 1.73138],
                          "mixture": [{"web": 0.374, "code": 0.317, "math": 0.31}] * 2,
                          "created_at": ["2026-11-26 17:00:00.232101"] * 2})
    render.render_frame(frame)
    text = out.getvalue()
    assert "row 1" in text and "row 2" in text
    for whole in ("s1/replicate/0000/seed-1", "web=0.374 code=0.317 math=0.310", "2026-11-26", "1.701"):
        assert whole in text, text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_a_float_column_has_one_format_with_the_digits_that_tell_its_values_apart():
    assert [render.float_column(pd.Series([0.00597833, 0.03279]))(v) for v in (0.00597833, 0.03279)] == [
        "0.00598", "0.03279"]                                     # aligned decimals, not 0.00597833 beside 0.03279
    losses = pd.Series([2.74707, 2.77489, 2.8161])
    assert [render.float_column(losses)(v) for v in losses] == ["2.747", "2.775", "2.816"]
    close = pd.Series([2.74707, 2.74712])                         # more digits where the values need them
    assert [render.float_column(close)(v) for v in close] == ["2.74707", "2.74712"]
    assert render.float_column(pd.Series([1200000.0, 300000.0]))(1200000.0) == "1200000"   # counts stay whole
