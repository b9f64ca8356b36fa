"""The demo end to end on a tiny budget: built-in domains, a RegMix search on Ray, the
recommendation validated next to the two baselines."""

import numpy as np
import pytest

from mixer.builtin import BUILTINS
from mixer.workspace import open_workspace
from search.demo import DemoConfig, run_demo
from store import run_sql

pytestmark = pytest.mark.slow  # starts Ray and trains


def test_demo_compares_the_recommendation_with_both_baselines(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    cfg = DemoConfig(runs=4, parallel=2, tokens=16_384, seq_len=64, batch_size=8, builtin_mb=0.2)
    name, table = run_demo(ws, cfg)
    assert name == "demo-1"
    assert list(table.mixture) == ["recommended", "uniform", "token-share", "best search run"]
    assert np.isfinite(table.avg_val_loss.astype(float)).all()
    for row in table.iloc[:3].itertuples():
        assert set(row.weights) <= set(BUILTINS) and sum(row.weights.values()) == pytest.approx(1.0)
        assert row.avg_val_loss == pytest.approx(np.mean([getattr(row, d) for d in BUILTINS]))
    runs = run_sql(ws.db_path, "SELECT run_id, seed, status FROM run_summary WHERE search = 'demo-1' ORDER BY run_id")
    assert len(runs) == 4 + 3 and (runs.status == "done").all()
    assert runs[runs.run_id.str.match(r"demo-1/\d{4}")].seed.nunique() == 4  # every proposal its own seed
    assert run_sql(ws.db_path, "SELECT count(*) AS n FROM domains").n[0] == len(BUILTINS)
