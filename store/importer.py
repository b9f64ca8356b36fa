"""`mixer runs import`: past experiments (e.g. RegMix's published tables) as finished runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mixer.errors import MixerError
from mixer.names import check_fidelity_label, check_imported_name, check_name
from store.db import DEFAULT_WAIT_S, first_row, transaction
from store.records import MetricRow, RunRecord, RunRole, SearchKind, SearchRecord, new_id
from store.writes import insert_search, upsert_runs

DEFAULT_SUM_TOLERANCE = 0.01


@dataclass
class ImportSpec:
    mixtures_csv: Path
    search: str
    weight_prefix: str
    metric_prefix: str
    metrics_csv: Path | None = None
    id_column: str | None = None
    metric_suffix: str = ""
    fidelity: str | None = None
    fidelity_column: str | None = None
    target: str | None = None
    sum_tolerance: float = DEFAULT_SUM_TOLERANCE
    maximize: bool = False             # the metrics are scores (higher is better)
    cost_column: str | None = None     # each run's cost (e.g. GPU hours): stored as its run time


@dataclass
class ImportReport:
    search_id: str
    n_runs: int
    domains: list[str]
    metrics: list[str]
    max_correction: float
    n_new: int = 0          # runs not stored before (the rest were stored already: updated in place)


def read_csv(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise MixerError(f"file not found: {path}")
    if path.is_dir():
        raise MixerError(f"{path} is a directory, not a CSV file")
    try:
        frame = pd.read_csv(path)
    except UnicodeDecodeError:
        raise MixerError(f"{path} is not a text CSV file (binary content)") from None
    except pd.errors.EmptyDataError:
        raise MixerError(f"{path} is empty") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise MixerError(f"cannot parse CSV {path}: {str(exc).splitlines()[0]}") from None
    if frame.empty:
        raise MixerError(f"{path} has a header but no rows")
    _check_header(path)
    return frame


def _check_header(path: Path) -> None:
    """Header names exactly as written: pandas renames a repeated `arxiv` to `arxiv.1` and
    keeps `arxiv ` apart from `arxiv`, which would silently become new domains."""
    import csv

    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        header = next(csv.reader(f), [])
    for name in header:
        if name != name.strip():
            raise MixerError(f"{path}: column {name!r} has leading or trailing spaces")
    seen = set()
    for name in header:
        if name in seen:
            raise MixerError(f"{path}: column '{name}' appears more than once in the header")
        seen.add(name)


def _prefixed(frame: pd.DataFrame, prefix: str, suffix: str, path: Path, what: str, taken: set[str]
              ) -> dict[str, str]:
    """Map stripped name -> column for columns starting with `prefix` (and ending with suffix),
    the id and fidelity columns (`taken`) aside."""
    found = {}
    for col in frame.columns:
        if col in taken:
            continue
        if prefix and col == prefix + suffix:
            raise MixerError(f"{path}: column '{col}' has no name after the prefix '{prefix}'")
        if col.startswith(prefix) and col.endswith(suffix) and len(col) > len(prefix) + len(suffix):
            found[col[len(prefix):len(col) - len(suffix) if suffix else None]] = col
    if not found:
        raise MixerError(f"no {what} columns with prefix '{prefix}'"
                         f"{f' and suffix {suffix!r}' if suffix else ''} in {path}")
    for name, column in found.items():   # names reach export paths, --target and --min/--max lists
        try:
            check_imported_name(name, what)
        except MixerError as exc:
            raise MixerError(f"{path}: column '{column}': {exc}") from None
    return found


def _numeric(frame: pd.DataFrame, columns: dict[str, str], path: Path) -> np.ndarray:
    block = frame[list(columns.values())].apply(pd.to_numeric, errors="coerce")
    bad = ~np.isfinite(block.to_numpy(dtype=np.float64))
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise MixerError(f"{path}: non-numeric, infinite or missing value in column "
                         f"'{block.columns[col]}' at data row {row + 1}")
    return block.to_numpy(dtype=np.float64)


def _ids(frame: pd.DataFrame, spec: ImportSpec, path: Path) -> pd.Series:
    column = spec.id_column or "index"
    if column in frame.columns:
        _refuse_empty_cells(frame[column], path, "id")   # else read as floats: every id changed ('2' -> '2.0')
        ids = frame[column].astype(str)
        bad = [i for i, key in enumerate(ids) if not key.strip() or "/" in key]
        if bad:   # '/' separates a run id's parts (search/fidelity/id)
            raise MixerError(f"{path}: id '{ids[bad[0]]}' at data row {bad[0] + 1} is blank or holds a '/'")
    elif spec.id_column is None and spec.metrics_csv is None:
        ids = pd.Series([str(i + 1) for i in range(len(frame))])
    else:
        raise MixerError(f"id column '{column}' not found in {path} "
                         f"(columns: {', '.join(map(str, frame.columns[:8]))}...)")
    dup = ids[ids.duplicated()]
    if len(dup):
        raise MixerError(f"{path}: id '{dup.iloc[0]}' appears more than once in column '{column}'")
    return ids.reset_index(drop=True)


def _refuse_empty_cells(column: pd.Series, path: Path, what: str) -> None:
    """A column whose every cell must hold a value (ids, fidelity labels)."""
    missing = np.flatnonzero(column.isna().to_numpy())
    if len(missing):
        raise MixerError(f"{path}: {what} column '{column.name}' is empty (or NaN) at data row {missing[0] + 1}")


def import_runs(db: Path, spec: ImportSpec, wait_s: float = DEFAULT_WAIT_S) -> ImportReport:
    """Validate everything first, then write the search and all runs in one transaction."""
    check_name(spec.search, "search")
    if not 0 <= spec.sum_tolerance < 1:  # also refuses nan
        raise MixerError(f"--sum-tolerance must be at least 0 and below 1, got {spec.sum_tolerance}")
    if spec.fidelity and spec.fidelity_column:
        raise MixerError("give either --fidelity or --fidelity-column, not both")
    mix = read_csv(spec.mixtures_csv)
    met = read_csv(spec.metrics_csv) if spec.metrics_csv else mix
    met_path = spec.metrics_csv or spec.mixtures_csv
    mix_ids = _ids(mix, spec, spec.mixtures_csv)
    if spec.metrics_csv:
        met_ids = _ids(met, spec, met_path)
        missing = sorted(set(mix_ids) - set(met_ids))
        extra = sorted(set(met_ids) - set(mix_ids))
        if missing or extra:
            raise MixerError(f"ids differ between {spec.mixtures_csv} and {met_path}: "
                             f"{len(missing)} without metrics, {len(extra)} without a mixture "
                             f"(e.g. {(missing or extra)[0]})")
        met = met.set_index(met_ids).loc[mix_ids].reset_index(drop=True)

    taken = {spec.id_column or "index", spec.fidelity_column}
    weight_cols = _prefixed(mix, spec.weight_prefix, "", spec.mixtures_csv, "weight", taken)
    metric_cols = _prefixed(met, spec.metric_prefix, spec.metric_suffix, met_path, "metric", taken)
    if spec.target and spec.target not in metric_cols:
        raise MixerError(f"target '{spec.target}' is not among the imported metrics "
                         f"({', '.join(sorted(metric_cols))})")
    weights, max_correction = _normalised_weights(_numeric(mix, weight_cols, spec.mixtures_csv), mix_ids, spec)
    values = _numeric(met, metric_cols, met_path)
    fidelities = _fidelities(mix, spec)
    costs = _costs(mix, met, spec, mix_ids, [*weight_cols.values(), *metric_cols.values()])
    domain_names = list(weight_cols)
    metric_names = list(metric_cols)
    with transaction(db, wait_s) as con:
        search_id = _ensure_import_search(con, spec)
        runs, metrics = _records(spec, search_id, mix_ids, domain_names, weights, metric_names,
                                 values, fidelities, costs)
        _refuse_another_table(con, spec.search, search_id, runs, metric_names)
        stored = con.execute("SELECT count(*) FROM runs WHERE list_contains(?, run_id)",
                             [[r.id for r in runs]]).fetchall()[0][0]
        upsert_runs(con, runs, metrics)
    return ImportReport(search_id, len(runs), domain_names, metric_names, max_correction, len(runs) - stored)


def _normalised_weights(weights: np.ndarray, ids: pd.Series, spec: ImportSpec) -> tuple[np.ndarray, float]:
    """Rows renormalised to sum 1 (rounding within the tolerance), and the largest correction."""
    if (weights < 0).any():
        row = int(np.argwhere(weights < 0)[0][0])
        raise MixerError(f"{spec.mixtures_csv}: negative weight in run '{ids[row]}'")
    sums = weights.sum(axis=1)
    if (sums == 0).any():
        raise MixerError(f"{spec.mixtures_csv}: every weight of run '{ids[int(np.argmax(sums == 0))]}' is zero")
    worst = int(np.argmax(np.abs(sums - 1.0)))
    if abs(sums[worst] - 1.0) > spec.sum_tolerance:
        raise MixerError(f"{spec.mixtures_csv}: weights of run '{ids[worst]}' sum to "
                         f"{sums[worst]:.6g}, more than {spec.sum_tolerance:g} from 1")
    return weights / sums[:, None], float(np.max(np.abs(sums - 1.0)))


def _fidelities(mix: pd.DataFrame, spec: ImportSpec) -> list[str | None]:
    if not spec.fidelity_column:
        return [None if spec.fidelity is None else check_fidelity_label(spec.fidelity)] * len(mix)
    if spec.fidelity_column not in mix.columns:
        raise MixerError(f"fidelity column '{spec.fidelity_column}' not found in {spec.mixtures_csv}")
    column = mix[spec.fidelity_column]
    _refuse_empty_cells(column, spec.mixtures_csv, "fidelity")
    labels = column.astype(str).tolist()
    for label in dict.fromkeys(labels):
        check_fidelity_label(label)
    return labels


def _costs(mix: pd.DataFrame, met: pd.DataFrame, spec: ImportSpec, ids: pd.Series, taken: list[str]
           ) -> np.ndarray | None:
    """`--cost-column` of the mixtures or the metrics file: one positive number per run."""
    column = spec.cost_column
    if column is None:
        return None
    if column in taken:
        raise MixerError(f"cost column '{column}' is a weight or metric column; name the column of run costs")
    if spec.metrics_csv and column in mix.columns and column in met.columns:
        raise MixerError(f"cost column '{column}' is in both {spec.mixtures_csv} and {spec.metrics_csv}; "
                         "rename one of them")
    frame = mix if column in mix.columns else met if column in met.columns else None
    if frame is None:
        raise MixerError(f"cost column '{column}' not found in {spec.mixtures_csv}"
                         + (f" or {spec.metrics_csv}" if spec.metrics_csv else ""))
    costs = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(costs) & (costs > 0))
    if bad.any():
        row = int(np.argmax(bad))
        cell = frame[column].iloc[row]
        shown = "an empty cell" if pd.isna(cell) or not str(cell).strip() else f"'{cell}'"
        raise MixerError(f"cost column '{column}': run '{ids[row]}' has {shown}, not a positive number")
    return costs


def _records(spec, search_id, mix_ids, domain_names, weights, metric_names, values, fidelities, costs=None):
    target_index = metric_names.index(spec.target) if spec.target else None
    runs, metrics = [], []
    for i, run_key in enumerate(mix_ids):
        # the fidelity is part of the id: one search may hold the same table at two fidelities
        run_id = f"{spec.search}/{fidelities[i]}/{run_key}" if fidelities[i] else f"{spec.search}/{run_key}"
        runs.append(RunRecord(
            id=run_id, search_id=search_id, status="done", role=RunRole.imported, fidelity=fidelities[i],
            mixture=dict(zip(domain_names, weights[i].tolist())),
            target=float(values[i, target_index]) if target_index is not None else None))
        metrics.extend(MetricRow(run_id=run_id, step=0, split="val", name=name, value=float(v))
                       for name, v in zip(metric_names, values[i]))
        if costs is not None:  # in the table's own unit: a search over it prices fidelities by them (run_costs)
            metrics.append(MetricRow(run_id=run_id, step=0, split="perf", name="cost", value=float(costs[i])))
    return runs, metrics


def _refuse_another_table(con: duckdb.DuckDBPyConnection, search: str, search_id: str, runs: list[RunRecord],
                          metrics: list[str]) -> None:
    """A re-import may correct a table's values, not bring another table: other domains or
    metrics, runs with and without fidelity labels side by side, or another mixture under a
    stored run's id. Merged into one search, its runs would no longer be comparable."""
    def stored(sql: str) -> list:
        return sorted(r[0] for r in con.execute(sql, [search_id]).fetchall())

    another = "import them under another --search name"
    domains = stored("SELECT DISTINCT unnest(map_keys(mixture)) FROM runs WHERE search_id = ?")
    if domains and domains != sorted(runs[0].mixture):
        raise MixerError(f"search '{search}' holds runs over domains {', '.join(domains)}; these runs mix "
                         f"{', '.join(sorted(runs[0].mixture))}: {another}")
    names = stored("SELECT DISTINCT m.name FROM metrics m JOIN runs r USING (run_id) WHERE r.search_id = ? "
                   "AND m.split = 'val'")
    if names and names != sorted(metrics):
        raise MixerError(f"search '{search}' holds metrics {', '.join(names)}; these runs have "
                         f"{', '.join(sorted(metrics))}: {another}")
    labelled = {r[0] is not None for r in con.execute("SELECT DISTINCT fidelity FROM runs WHERE search_id = ?",
                                                      [search_id]).fetchall()}
    if labelled and labelled != {r.fidelity is not None for r in runs}:
        give = "give these runs --fidelity or --fidelity-column" if True in labelled else "drop their --fidelity"
        raise MixerError(f"search '{search}' holds runs {'with' if True in labelled else 'without'} fidelity "
                         f"labels; {give}, or {another}")
    new = {r.id: r.mixture for r in runs}
    for run_id, keys, weights in con.execute("SELECT run_id, map_keys(mixture), map_values(mixture) FROM runs "
                                             "WHERE search_id = ? AND list_contains(?, run_id)",
                                             [search_id, list(new)]).fetchall():
        if any(abs(new[run_id].get(k, 0.0) - w) > 1e-9 for k, w in zip(keys, weights)):
            raise MixerError(f"run '{run_id}' is stored with another mixture: a re-import corrects values, not "
                             f"mixtures; {another}")


def _ensure_import_search(con: duckdb.DuckDBPyConnection, spec: ImportSpec) -> str:
    direction = "maximize" if spec.maximize else "minimize"
    row = first_row(con, "SELECT id, kind, direction, backend, target FROM searches WHERE name = ?", [spec.search])
    if row is not None:
        search_id, kind, stored_direction, backend, target = row
        if kind != SearchKind.imported.value:
            raise MixerError(f"search '{spec.search}' exists and is a {backend} search, "
                             "not an import; choose another --search name")
        if stored_direction != direction:
            raise MixerError(f"search '{spec.search}' was imported as {stored_direction}d; import into it "
                             f"{'with' if stored_direction == 'maximize' else 'without'} --maximize, or under another "
                             "name")
        if target is not None and spec.target != target:   # its runs' values would no longer be its target
            raise MixerError(f"search '{spec.search}' was imported with --target {target}; import into it with "
                             f"--target {target}, or under another name")
        if target is None and spec.target is not None:   # its stored runs take their value of it too
            con.execute("UPDATE searches SET target = ? WHERE id = ?", [spec.target, search_id])
            con.execute("UPDATE runs SET target_value = m.value FROM metrics m WHERE runs.search_id = ? AND "
                        "m.run_id = runs.run_id AND m.split = 'val' AND m.step = 0 AND m.name = ?",
                        [search_id, spec.target])
        return search_id
    record = SearchRecord(id=new_id("s"), name=spec.search, kind=SearchKind.imported, backend="import",
                          evaluator="table",
                          target=spec.target, status="done", direction=direction,
                          config={"source": str(spec.mixtures_csv), "metrics": str(spec.metrics_csv)})
    insert_search(con, record)
    return record.id
