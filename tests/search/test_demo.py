"""The demo end to end on a tiny budget: built-in domains, a RegMix search on Ray, the
recommendation measured next to the two baselines with replicate seeds."""

import numpy as np
import pytest

from mixer.builtin import BUILTIN_EVAL_SETS, BUILTINS
from mixer.workspace import open_workspace
from search.demo import DemoConfig, run_demo
from store import run_sql

pytestmark = pytest.mark.slow  # starts Ray and trains


def test_demo_compares_the_recommendation_with_both_baselines_over_seeds(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    cfg = DemoConfig(runs=4, parallel=2, tokens=16_384, seq_len=64, batch_size=8, builtin_mb=0.2, seeds=2)
    result = run_demo(ws, cfg)
    table = result.table
    assert result.search == "demo-1"
    same = result.same_as  # a recommendation that is a baseline is measured once, under both names
    assert list(table.mixture) == [f"recommended = {same}" if same else "recommended", "uniform", "token-share"]
    assert np.isfinite(table[list(BUILTINS)].to_numpy(dtype=float)).all()  # every domain, every row
    for _, row in table.iloc[:3].iterrows():
        assert row["seeds"] == 2 and row["std"] >= 0
        assert row.target == pytest.approx(row["stdlib-tail"])  # the demo's target: the eval-only set's loss
    assert [v.baseline for v in result.verdicts] == ["uniform", "token-share"]
    rule = result.recommendation.evidence["rule"]
    assert rule in ("best-run:weak-model", "best-run:too-few-runs", "baseline:no-clear-gain")  # 4 runs: no model yet
    runs = run_sql(ws.db_path, "SELECT run_id, seed, status FROM run_summary WHERE search = 'demo-1' ORDER BY run_id")
    assert len(runs) == 4 + (2 if same else 3) * 2 and (runs.status == "done").all()
    if same:
        assert table.iloc[0].target == table[table.mixture == same].target.iloc[0]
        assert next(v for v in result.verdicts if v.baseline == same).same_mixture
    own = runs[runs.run_id.str.match(r"demo-1/\d{4}")]
    replicates = runs[runs.run_id.str.contains("/seed-")]
    assert own.seed.nunique() == 4  # every proposal its own seed
    assert replicates.groupby(replicates.run_id.str.split("/").str[1]).seed.apply(tuple).nunique() == 1  # paired
    assert not set(replicates.seed) & set(own.seed)  # the best run is measured again, not replayed
    stored = run_sql(ws.db_path, "SELECT name, eval_only FROM domains ORDER BY name")
    assert dict(zip(stored.name, stored.eval_only)) == {**{n: False for n in BUILTINS}, **{n: True for n in BUILTIN_EVAL_SETS}}


def test_an_unknown_demo_target_is_refused_before_anything_is_built(tmp_path):
    from mixer.errors import MixerError

    ws = open_workspace(tmp_path / "ws")
    with pytest.raises(MixerError, match="unknown target rust .available: avg, worst, cpp, docs, licenses, python, stdlib-tail"):
        run_demo(ws, DemoConfig(target="rust"))
    assert not ws.domains_dir.exists() or not any(ws.domains_dir.iterdir())
