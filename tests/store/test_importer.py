from pathlib import Path

import pandas as pd
import pytest

from mixer.errors import MixerError
from store import ImportSpec, import_runs, run_sql
from tests.conftest import REGMIX, needs_regmix


def _write_tables(tmp: Path, n: int = 6) -> tuple[Path, Path]:
    mixtures = pd.DataFrame({"index": range(1, n + 1),
                             "w_web": [0.5, 0.2, 0.0, 1.001, 0.3, 0.7][:n],
                             "w_code": [0.5, 0.8, 0.999, 0.0, 0.7, 0.3][:n]})
    metrics = pd.DataFrame({"index": list(range(n, 0, -1)),  # other order: joined on id
                            "m_web_loss": [float(i) for i in range(n, 0, -1)],
                            "m_code_loss": [10.0 + i for i in range(n, 0, -1)]})
    mix_path, met_path = tmp / "mix.csv", tmp / "met.csv"
    mixtures.to_csv(mix_path, index=False)
    metrics.to_csv(met_path, index=False)
    return mix_path, met_path


def _spec(mix, met, **kw):
    base = dict(mixtures_csv=mix, metrics_csv=met, search="past", weight_prefix="w_",
                metric_prefix="m_", metric_suffix="_loss", fidelity="small", target="web")
    return ImportSpec(**{**base, **kw})


def test_import_joins_on_id_renormalises_and_is_idempotent(tmp_path):
    db = tmp_path / "i.duckdb"
    mix, met = _write_tables(tmp_path)
    report = import_runs(db, _spec(mix, met))
    assert report.n_runs == report.n_new == 6 and report.domains == ["web", "code"]
    assert report.max_correction == pytest.approx(0.001)
    again = import_runs(db, _spec(mix, met))
    assert again.n_runs == 6 and again.n_new == 0  # said so: nothing was added
    frame = run_sql(db, "SELECT run_id, target_value, final_values, mixture FROM run_summary ORDER BY run_id")
    assert len(frame) == 6
    row4 = frame[frame.run_id == "past/small/4"].iloc[0]
    assert row4.target_value == 4.0 and row4.final_values == {"code": 14.0, "web": 4.0}
    assert row4.mixture["web"] == pytest.approx(1.0) and sum(row4.mixture.values()) == pytest.approx(1.0)


def test_the_same_table_at_two_fidelities_is_two_sets_of_runs(tmp_path):
    db = tmp_path / "i.duckdb"
    mix, met = _write_tables(tmp_path)
    import_runs(db, _spec(mix, met, fidelity="small"))
    import_runs(db, _spec(mix, met, fidelity="large"))
    counts = run_sql(db, "SELECT fidelity, count(*) AS n FROM run_summary GROUP BY fidelity ORDER BY fidelity")
    assert counts.to_dict("list") == {"fidelity": ["large", "small"], "n": [6, 6]}


def test_one_file_holding_weights_and_metrics(tmp_path):
    frame = pd.DataFrame({"w_a": [0.5, 1.0], "w_b": [0.5, 0.0], "m_a": [1.0, 2.0]})
    path = tmp_path / "both.csv"
    frame.to_csv(path, index=False)
    report = import_runs(tmp_path / "i.duckdb", ImportSpec(mixtures_csv=path, search="one",
                                                           weight_prefix="w_", metric_prefix="m_"))
    assert report.n_runs == 2 and report.metrics == ["a"]


@pytest.mark.parametrize("change, message", [
    (dict(weight_prefix="nope_"), "no weight columns with prefix 'nope_'"),
    (dict(metric_prefix="nope_"), "no metric columns with prefix 'nope_'"),
    (dict(id_column="run"), "id column 'run' not found"),
    (dict(target="bogus"), "target 'bogus' is not among"),
    (dict(fidelity_column="fid"), "not both"),
    (dict(sum_tolerance=0.0001), "run .3. sum to 0.999"),
    (dict(sum_tolerance=float("nan")), "--sum-tolerance must be at least 0"),
    (dict(sum_tolerance=-0.1), "--sum-tolerance must be at least 0"),
    (dict(fidelity=""), "bad fidelity label ''"),
    (dict(fidelity="a b"), "bad fidelity label 'a b'"),
])
def test_bad_specs_name_the_problem_and_write_nothing(tmp_path, change, message):
    db = tmp_path / "i.duckdb"
    mix, met = _write_tables(tmp_path)
    with pytest.raises(MixerError, match=message):
        import_runs(db, _spec(mix, met, **change))
    assert run_sql(db, "SELECT count(*) AS n FROM runs")["n"].tolist() == [0]
    assert run_sql(db, "SELECT count(*) AS n FROM searches")["n"].tolist() == [0]


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\xfa" * 50, "not a text CSV|cannot parse|non-numeric"),
    (b"index,w_a,w_b\n1,0.5,zero\n", "non-numeric, infinite or missing value in column 'w_b'"),
    (b"index,w_a,w_b\n1,0.5,0.5\n1,0.5,0.5\n", "appears more than once"),
    (b"index,w_a,w_b\n1,-0.5,1.5\n", "negative weight"),
    (b"index,w_a,w_b\n", "no rows"),
    (b"index,w_a,w_a\n1,0.5,0.5\n", "column 'w_a' appears more than once"),
    (b"index,w_a,w_b \n1,0.5,0.5\n", "column 'w_b ' has leading or trailing spaces"),
    (b"index,w_a,w_b\n1,inf,0.5\n", "infinite or missing value in column 'w_a'"),
    (b"index,w_a,w_b\n1,0,0\n", "every weight of run '1' is zero"),
    (b"index,w_a,w_../x\n1,0.5,0.5\n", "column 'w_../x': bad weight name '../x'"),
    (b'index,w_a,"w_a,b"\n1,0.5,0.5\n', "column 'w_a,b': bad weight name 'a,b'"),
    (b"index,w_a,w_avg\n1,0.5,0.5\n", "column 'w_avg': bad weight name 'avg'"),
    (b"index,w_a,w_ b\n1,0.5,0.5\n", "column 'w_ b': bad weight name ' b'"),
    (b"index,w_a,w_b\n,0.5,0.5\n2,0.5,0.5\n", "id column 'index' is empty .or NaN. at data row 1"),
    (b"index,w_a,w_b\nx/1,0.5,0.5\n", "id 'x/1' at data row 1 is blank or holds a '/'"),
    (b"index,w_a,w_b,w_\n1,0.5,0.5,0\n", "column 'w_' has no name after the prefix 'w_'"),
])
def test_bad_csv_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(MixerError, match=message):
        import_runs(tmp_path / "i.duckdb", ImportSpec(mixtures_csv=path, search="x", weight_prefix="w_",
                                                      metric_prefix="w_"))


def test_missing_file_and_mismatched_ids(tmp_path):
    mix, met = _write_tables(tmp_path)
    with pytest.raises(MixerError, match="file not found"):
        import_runs(tmp_path / "i.duckdb", _spec(tmp_path / "absent.csv", met))
    pd.DataFrame({"index": [1, 2], "m_web_loss": [1.0, 2.0], "m_code_loss": [1.0, 2.0]}).to_csv(met, index=False)
    with pytest.raises(MixerError, match="ids differ"):
        import_runs(tmp_path / "i.duckdb", _spec(mix, met))


@needs_regmix
def test_regmix_published_tables_import_as_they_are(tmp_path):
    db = tmp_path / "r.duckdb"
    report = import_runs(db, ImportSpec(
        mixtures_csv=REGMIX / "train_mixture_1m.csv", metrics_csv=REGMIX / "train_pile_loss_1m.csv",
        search="regmix-1m", weight_prefix="train_the_pile_", metric_prefix="metric/the_pile_",
        metric_suffix="_val_loss", fidelity="1m", target="pile_cc"))
    assert report.n_runs == 512 and len(report.domains) == 17 and len(report.metrics) == 13
    assert 0.002 < report.max_correction <= 0.004
    frame = run_sql(db, "SELECT min(target_value) AS lo, max(target_value) AS hi, count(*) AS n FROM run_summary")
    assert frame.n[0] == 512
    assert frame.lo[0] == pytest.approx(5.082, abs=1e-3) and frame.hi[0] == pytest.approx(6.645, abs=1e-3)


def test_a_cost_column_is_stored_as_each_runs_cost_in_its_own_unit(tmp_path):
    db = tmp_path / "i.duckdb"
    mix, met = _write_tables(tmp_path)
    pd.read_csv(met).assign(gpu_hours=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).to_csv(met, index=False)
    import_runs(db, _spec(mix, met, cost_column="gpu_hours"))
    from store.reads import run_costs
    assert run_costs(db, ["small"]) == {"small": 3.5}  # the median over the imported runs
    from store.db import open_db
    with open_db(db, read_only=True) as con:  # a cost, not a wall time: no unit is implied
        assert {r[0] for r in con.execute("SELECT DISTINCT name FROM metrics WHERE split = 'perf'").fetchall()} == {"cost"}


@pytest.mark.parametrize("value, message", [("x", "has 'x', not a positive number"), (0, "has '0.0', not a positive"),
                                            (None, "has an empty cell, not a positive number")])
def test_a_bad_cost_is_refused_and_nothing_is_stored(tmp_path, value, message):
    db = tmp_path / "i.duckdb"
    mix, met = _write_tables(tmp_path)
    pd.read_csv(met).assign(cost=[1.0, 2.0, value, 4.0, 5.0, 6.0]).to_csv(met, index=False)
    with pytest.raises(MixerError, match=f"cost column 'cost': run '4' {message}"):
        import_runs(db, _spec(mix, met, cost_column="cost"))
    with pytest.raises(MixerError, match="cost column 'hours' not found"):
        import_runs(db, _spec(mix, met, cost_column="hours"))
    assert not db.exists() or run_sql(db, "SELECT count(*) AS n FROM runs")["n"].tolist() == [0]


def test_a_cost_column_must_be_one_column_of_its_own(tmp_path):
    db = tmp_path / "i.duckdb"
    mix, met = _write_tables(tmp_path)
    with pytest.raises(MixerError, match="cost column 'w_web' is a weight or metric column"):
        import_runs(db, _spec(mix, met, cost_column="w_web"))
    with pytest.raises(MixerError, match="cost column 'm_web_loss' is a weight or metric column"):
        import_runs(db, _spec(mix, met, cost_column="m_web_loss"))
    pd.read_csv(mix).assign(hours=1.5).to_csv(mix, index=False)
    pd.read_csv(met).assign(hours=99.0).to_csv(met, index=False)
    with pytest.raises(MixerError, match="cost column 'hours' is in both"):
        import_runs(db, _spec(mix, met, cost_column="hours"))
    assert not db.exists() or run_sql(db, "SELECT count(*) AS n FROM runs")["n"].tolist() == [0]


def test_an_empty_fidelity_cell_is_refused_and_labels_follow_the_rule(tmp_path):
    path = tmp_path / "fid.csv"
    path.write_text("index,w_a,w_b,m_a,fid\n1,0.5,0.5,1.0,small\n2,0.5,0.5,1.0,\n")
    spec = ImportSpec(mixtures_csv=path, search="x", weight_prefix="w_", metric_prefix="m_", fidelity_column="fid")
    with pytest.raises(MixerError, match="fidelity column 'fid' is empty .or NaN. at data row 2"):
        import_runs(tmp_path / "i.duckdb", spec)
    path.write_text("index,w_a,w_b,m_a,fid\n1,0.5,0.5,1.0,small\n2,0.5,0.5,1.0,a b\n")
    with pytest.raises(MixerError, match="bad fidelity label 'a b'"):
        import_runs(tmp_path / "i.duckdb", spec)
    assert run_sql(tmp_path / "i.duckdb", "SELECT count(*) AS n FROM runs")["n"].tolist() == [0]


def test_an_empty_prefix_takes_every_other_column(tmp_path):
    """Every column but the id and fidelity columns (a reviewer's import failed on its ids)."""
    path = tmp_path / "t.csv"
    path.write_text("index,a,b,fid\n1,0.5,0.5,small\n2,0.2,0.8,small\n")
    report = import_runs(tmp_path / "i.duckdb", ImportSpec(mixtures_csv=path, search="t", weight_prefix="",
                                                           metric_prefix="m_", fidelity_column="fid",
                                                           metrics_csv=_metrics(tmp_path)))
    assert report.domains == ["a", "b"]


def _metrics(tmp: Path) -> Path:
    path = tmp / "m.csv"
    path.write_text("index,m_loss\n1,2.0\n2,3.0\n")
    return path


def test_runs_over_other_domains_are_not_merged_into_an_import(tmp_path):
    db = tmp_path / "i.duckdb"
    mix, met = _write_tables(tmp_path)
    import_runs(db, _spec(mix, met))
    other = tmp_path / "other.csv"
    other.write_text("index,w_web,w_math,m_web_loss\n1,0.5,0.5,1.0\n")
    with pytest.raises(MixerError, match="search 'past' holds runs over domains code, web; these runs mix math, web"):
        import_runs(db, ImportSpec(mixtures_csv=other, search="past", weight_prefix="w_", metric_prefix="m_",
                                   metric_suffix="_loss", fidelity="small", target="web"))
    assert run_sql(db, "SELECT count(*) AS n FROM runs")["n"].tolist() == [6]


def test_a_re_import_corrects_values_but_brings_no_other_table(tmp_path):
    """Another table under a stored name was merged in silently (a reviewer's test table
    replaced the train table's mixtures, id by id)."""
    db = tmp_path / "i.duckdb"
    mix, met = _write_tables(tmp_path)
    import_runs(db, _spec(mix, met))
    swapped = pd.read_csv(mix).rename(columns={"w_web": "w_code", "w_code": "w_web"})
    swapped.to_csv(tmp_path / "swapped.csv", index=False)
    with pytest.raises(MixerError, match="run 'past/small/[2-6]' is stored with another mixture"):
        import_runs(db, _spec(tmp_path / "swapped.csv", met))
    with pytest.raises(MixerError, match="search 'past' holds runs with fidelity labels; give these runs --fidelity"):
        import_runs(db, _spec(mix, met, fidelity=None))
    pd.read_csv(met).assign(m_math_loss=1.0).to_csv(tmp_path / "more.csv", index=False)
    with pytest.raises(MixerError, match="search 'past' holds metrics code, web; these runs have code, math, web"):
        import_runs(db, _spec(mix, tmp_path / "more.csv"))
    corrected = pd.read_csv(met).assign(m_web_loss=lambda f: f.m_web_loss + 1)
    corrected.to_csv(tmp_path / "corrected.csv", index=False)
    assert import_runs(db, _spec(mix, tmp_path / "corrected.csv")).n_new == 0
    assert run_sql(db, "SELECT target_value FROM runs WHERE run_id = 'past/small/4'").target_value.tolist() == [5.0]


def test_a_target_given_later_reaches_every_stored_run(tmp_path):
    """Only the rows of the second file had a value: a model of the search saw half its runs."""
    db = tmp_path / "i.duckdb"
    mix, met = _write_tables(tmp_path)
    import_runs(db, _spec(mix, met, target=None))
    (tmp_path / "few").mkdir()
    import_runs(db, _spec(*_write_tables(tmp_path / "few", n=3), target="web"))
    frame = run_sql(db, "SELECT search, target_value FROM run_summary")
    assert len(frame) == 6 and frame.target_value.notna().all()
    assert run_sql(db, "SELECT target FROM searches").target.tolist() == ["web"]
