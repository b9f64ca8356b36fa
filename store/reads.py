"""Read-only queries. `run_sql` is what `mixer sql` runs: one SELECT-type statement (SELECT,
WITH, DESCRIBE, SHOW, SUMMARIZE) on a read-only connection that can reach no file, network,
extension or setting beyond the store, so nothing typed can change the store or the machine.
Saving a result is `--output FILE`, written by mixer, never by SQL."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from mixer.clustering.records import ClusteringRecord, ClusterRecord
from mixer.errors import MixerError
from store.db import DEFAULT_WAIT_S, first_row, open_db, schema_version
from store.records import SearchRecord


def run_sql(db: Path, sql: str, wait_s: float = DEFAULT_WAIT_S) -> pd.DataFrame:
    """Run one user query in the sandbox (module docstring)."""
    with open_db(db, read_only=True, wait_s=wait_s, sandbox=True) as con:
        try:
            _check_one_query(con, sql)
            result = con.execute(sql)
            json_columns = [d[0] for d in result.description if str(d[1]) == "JSON"]
            frame = result.df()
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            if "read-only" in first.lower():
                raise MixerError("mixer sql is read-only: the statement would change the store "
                                 "and was refused") from None
            if "disabled by configuration" in first or "configuration has been locked" in first:
                raise MixerError(f"mixer sql reads the store only: {first}") from None
            raise MixerError(f"SQL error: {first}{_renamed_hint(first)}") from None
    frame.attrs["json_columns"] = json_columns   # JSON text: written as the values it holds (render.write_frame)
    return frame


def _renamed_hint(error: str) -> str:
    """A query written for schema 5 names columns that version 6 renamed: say so."""
    renamed = {"id": "run_id", "target": "target_value"}
    missing = next((old for old in renamed if f'column "{old}" not found' in error), None)
    return (f" (schema 6 renamed runs.{missing} to {renamed[missing]}; `mixer sql \"describe runs\"` lists the "
            "columns)") if missing else ""


def _check_one_query(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    statements = con.extract_statements(sql)
    if len(statements) != 1:
        raise MixerError(f"mixer sql runs exactly one statement, got {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        name = kind.name if hasattr(kind, "name") else str(kind)
        raise MixerError(f"mixer sql is read-only: statement type {name} was refused (use SELECT, WITH, "
                         "DESCRIBE or SHOW; save results with --output FILE)")


@dataclass
class StoreInfo:
    schema_version: int
    n_domains: int
    n_searches: int
    n_proxy_train: int          # of those, the one-run searches `mixer proxy train` makes
    n_runs: int
    n_runs_done: int


def store_info(db: Path, wait_s: float = DEFAULT_WAIT_S) -> StoreInfo:
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        one = lambda q: int(first_row(con, q)[0])  # noqa: E731
        return StoreInfo(
            schema_version=schema_version(con),
            n_domains=one("SELECT count(*) FROM domains"),
            n_searches=one("SELECT count(*) FROM searches"),
            n_proxy_train=one("SELECT count(*) FROM searches WHERE kind = 'proxy-train'"),
            n_runs=one("SELECT count(*) FROM runs"),
            n_runs_done=one("SELECT count(*) FROM runs WHERE status = 'done'"),
        )


def domain_names(db: Path, wait_s: float = DEFAULT_WAIT_S) -> list[str]:
    """Names in the `domains` table."""
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        return [r[0] for r in con.execute("SELECT name FROM domains ORDER BY name").fetchall()]


# Ids that differ only in a trailing number sort by that number (`t/10` after `t/9`, as
# `ls -v` does): an import stores its rows at one timestamp, named by their CSV row.
_NATURAL_ORDER = (r"regexp_extract(run_id, '^(.*?)\d*$', 1) {0},"
                  r" TRY_CAST(regexp_extract(run_id, '\d+$') AS HUGEINT) {0} NULLS {1}, run_id {0}")
_NATURAL_RUN_ORDER = _NATURAL_ORDER.format("DESC", "LAST")
_NATURAL_RUN_ORDER_ASC = _NATURAL_ORDER.format("ASC", "FIRST")


def list_runs(db: Path, search: str | None = None, limit: int | None = None,
              wait_s: float = DEFAULT_WAIT_S) -> pd.DataFrame:
    """Runs (newest first), optionally of one search given by name or id."""
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        where, params = "", []
        if search is not None:
            search_id = _resolve_search_id(con, search)
            where, params = "WHERE search_id = ?", [search_id]
        sql = (f"SELECT run_id, search, role, status, fidelity, target_value, mixture, error "
               f"FROM run_summary {where} ORDER BY created_at DESC, {_NATURAL_RUN_ORDER}")
        if limit:
            sql += f" LIMIT {int(limit)}"
        return con.execute(sql, params).df()


def _resolve_search_id(con: duckdb.DuckDBPyConnection, search: str) -> str:
    row = first_row(con, "SELECT id FROM searches WHERE id = ? OR name = ?", [search, search])
    if row is None:
        raise MixerError(f"no search named '{search}'")
    return row[0]


def search_exists(db: Path, search: str, wait_s: float = DEFAULT_WAIT_S) -> bool:
    """Whether a search has this name or id."""
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        return first_row(con, "SELECT 1 FROM searches WHERE id = ? OR name = ?", [search, search]) is not None


def get_search(db: Path, search: str, wait_s: float = DEFAULT_WAIT_S) -> SearchRecord:
    """A search by name or id."""
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        search_id = _resolve_search_id(con, search)
        row = first_row(con, "SELECT id, name, backend, evaluator, config, target, direction, status, kind "
                        "FROM searches WHERE id = ?", [search_id])
    return SearchRecord(id=row[0], name=row[1], backend=row[2], evaluator=row[3],
                        config=json.loads(row[4]), target=row[5], direction=row[6], status=row[7], kind=row[8])


def search_runs(db: Path, search_id: str, wait_s: float = DEFAULT_WAIT_S) -> pd.DataFrame:
    """Every run of a search with its mixture and final per-domain values (dict columns), in
    the order they were made (an import's by id, numbers in numeric order: `t/9` before
    `t/10`). Fetched as Arrow and converted after the connection closes: a search's driver waits
    for no reader's conversion to Python objects (five times longer than the query)."""
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        table = con.sql(
            "SELECT run_id, role, status, mixture, fidelity, pool_key, preset, n_params, tokens, seed, init_seed,"
            " target_value, final_values, error FROM run_summary WHERE search_id = $1 ORDER BY created_at, "
            f"{_NATURAL_RUN_ORDER_ASC}",
            params=[search_id]).to_arrow_table()
    frame = table.to_pandas()
    for column in ("mixture", "final_values"):      # Arrow maps arrive as lists of (key, value)
        frame[column] = [None if pairs is None else dict(pairs) for pairs in frame[column]]
    for column in ("n_params", "tokens", "seed", "init_seed"):
        frame[column] = frame[column].astype("Int64")
    for column in ("fidelity", "pool_key", "preset", "error"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def run_summary(db: Path, run_id: str, wait_s: float = DEFAULT_WAIT_S) -> dict | None:
    """One run's row of `run_summary` (mixture, status, final per-domain values), or None."""
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        frame = con.execute("SELECT run_id, search, role, status, mixture, preset, tokens, target_value, final_values,"
                            " error"
                            " FROM run_summary"
                            " WHERE run_id = ?", [run_id]).df()
    return None if frame.empty else frame.iloc[0].to_dict()


def run_metrics(db: Path, run_id: str, splits: list[str], wait_s: float = DEFAULT_WAIT_S) -> pd.DataFrame:
    """A run's metric rows (step, tokens, split, name, value) of the given splits."""
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        return con.execute("SELECT step, tokens, split, name, value FROM metrics WHERE run_id = ? AND"
                           " list_contains(?, split) ORDER BY step, name", [run_id, splits]).df()


def search_version(db: Path, search: str, wait_s: float = DEFAULT_WAIT_S) -> tuple | None:
    """A cheap fingerprint of everything a search's page shows (its status, its runs' states
    and times, its metric rows, its recommendations): equal fingerprints, equal documents.
    None when there is no such search."""
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        return first_row(con, (
            "SELECT s.id, s.status,"
            " (SELECT [count(*), count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'running'),"
            "   count(*) FILTER (WHERE status = 'failed')] FROM runs WHERE search_id = s.id),"
            " (SELECT [max(created_at), max(started_at), max(finished_at)] FROM runs WHERE search_id = s.id),"
            " (SELECT count(*) FROM metrics m JOIN runs r ON r.run_id = m.run_id WHERE r.search_id = s.id),"
            " (SELECT [count(*)::VARCHAR, max(created_at)::VARCHAR] FROM recommendations WHERE search_id = s.id)"
            " FROM searches s WHERE s.id = ? OR s.name = ? LIMIT 1"), [search, search])


def run_version(db: Path, run_id: str, wait_s: float = DEFAULT_WAIT_S) -> tuple | None:
    """A run's status and how many metric rows it has (None: no such run)."""
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        return first_row(con, "SELECT r.status, (SELECT count(*) FROM metrics m WHERE m.run_id = r.run_id)"
                              " FROM runs r WHERE r.run_id = ?", [run_id])


def run_wall_times(db: Path, search_id: str, wait_s: float = DEFAULT_WAIT_S) -> dict[str, float]:
    """Wall time in seconds (perf/wall_s) of each finished run of a search that measured one."""
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        rows = con.execute("SELECT m.run_id, max(m.value) FROM metrics m JOIN runs r ON r.run_id = m.run_id"
                           " WHERE r.search_id = ? AND m.split = 'perf' AND m.name = 'wall_s' GROUP BY m.run_id",
                           [search_id]).fetchall()
    return {run_id: float(seconds) for run_id, seconds in rows}


def latest_recommendation(db: Path, search_id: str, wait_s: float = DEFAULT_WAIT_S) -> dict | None:
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        row = first_row(con, "SELECT mixture, predicted, predicted_std, evidence, validation_run_id, created_at"
                             " FROM recommendations WHERE search_id = ? ORDER BY created_at DESC LIMIT 1",
                        [search_id])
    if row is None:
        return None
    return {"mixture": row[0], "predicted": row[1], "predicted_std": row[2], "evidence": json.loads(row[3]),
            "validation_run_id": row[4], "created_at": row[5]}


def list_searches(db: Path, wait_s: float = DEFAULT_WAIT_S) -> pd.DataFrame:
    """One row per search: its runs, finished runs, and the best target value of its own runs
    (role search, or imported) at its target fidelity, as `search status` reports it, its
    own finished runs (what its budget counts) and its run budget (None for imported runs
    and online runs)."""
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        return con.execute(
            "SELECT s.id, s.name, s.kind, s.backend, s.evaluator, s.target, s.direction, s.status,"
            " count(r.run_id) AS runs, count(r.run_id) FILTER (WHERE r.status = 'done') AS done,"
            " count(r.run_id) FILTER (WHERE r.status = 'done' AND r.role IN ('search', 'imported')) AS own_done,"
            " CASE WHEN s.direction = 'maximize' THEN max(r.target_value) FILTER (WHERE counted)"
            " ELSE min(r.target_value) FILTER (WHERE counted) END AS best,"
            " TRY_CAST(s.config->>'$.budget.runs' AS INTEGER) AS budget,"
            " s.created_at FROM searches s LEFT JOIN runs r ON r.search_id = s.id,"
            " LATERAL (SELECT r.role IN ('search', 'imported') AND (s.config->>'$.fidelity.target' IS NULL"
            " OR r.fidelity = s.config->>'$.fidelity.target') AS counted)"
            " GROUP BY s.id, s.name, s.kind, s.backend, s.evaluator, s.target, s.direction, s.status, s.config,"
            " s.created_at"
            " ORDER BY s.created_at").df()


def run_costs(db: Path, fidelities: list[str], search_id: str | None = None,
              wait_s: float = DEFAULT_WAIT_S) -> dict[str, float]:
    """Median cost of finished runs at each fidelity label, over the whole store, or over
    one search's runs (a table's: its own imported costs, not another table's that shares
    its labels); labels without a measured run are absent. A trained run's cost is its
    wall time in seconds (perf/wall_s); an imported run's is its `--cost-column` value, in
    the table's own unit (perf/cost)."""
    if not fidelities:
        return {}
    only = " AND r.search_id = ?" if search_id is not None else ""
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        rows = con.execute(
            "SELECT r.fidelity, median(m.value) FROM runs r JOIN metrics m ON m.run_id = r.run_id"
            " WHERE r.status = 'done' AND m.split = 'perf' AND m.name IN ('wall_s', 'cost') AND m.value > 0"
            " AND list_contains(?, r.fidelity)" + only + " GROUP BY r.fidelity",
            [fidelities] + ([search_id] if search_id is not None else [])).fetchall()
    return {label: float(seconds) for label, seconds in rows}


def next_search_name(db: Path, prefix: str, wait_s: float = DEFAULT_WAIT_S) -> str:
    """`PREFIX-N` with the smallest N >= 1 not taken by a search."""
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        taken = {r[0] for r in con.execute("SELECT name FROM searches WHERE starts_with(name, ?)",
                                           [f"{prefix}-"]).fetchall()}
    n = 1
    while f"{prefix}-{n}" in taken:
        n += 1
    return f"{prefix}-{n}"


def get_clustering(db: Path, name: str, wait_s: float = DEFAULT_WAIT_S) -> ClusteringRecord | None:
    """Clustering `name` with its clusters (largest first), or None."""
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        row = first_row(con, "SELECT name, embedder, n_docs, n_sample, config, sources FROM clusterings"
                             " WHERE name = ?", [name])
        if row is None:
            return None
        clusters = [ClusterRecord(cluster=c[0], domain=c[1], n_docs=c[2], n_tokens=c[3], centroid_norm=c[4],
                                  top_terms=list(c[5] or []), parents=list(c[6] or []))
                    for c in con.execute("SELECT cluster, domain, n_docs, n_tokens, centroid_norm, top_terms,"
                                         " parents FROM clusters WHERE clustering = ? ORDER BY cluster",
                                         [name]).fetchall()]
    return ClusteringRecord(name=row[0], embedder=row[1], n_docs=row[2], n_sample=row[3],
                            config=json.loads(row[4]), sources=json.loads(row[5]), clusters=clusters)


def clustering_names(db: Path, wait_s: float = DEFAULT_WAIT_S) -> list[str]:
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        return [r[0] for r in con.execute("SELECT name FROM clusterings ORDER BY name").fetchall()]


def domain_versions(db: Path, wait_s: float = DEFAULT_WAIT_S) -> pd.DataFrame:
    """Every version of every domain name: name, version, content_hash, n_docs, n_tokens,
    n_val_tokens, eval_only, created_at, removed_at (NaT while current)."""
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        return con.execute("SELECT name, version, content_hash, n_docs, n_tokens, n_val_tokens, eval_only, created_at,"
                           " removed_at FROM domain_versions ORDER BY name, version").fetch_df()


def searches_using_domain(db: Path, name: str, wait_s: float = DEFAULT_WAIT_S) -> list[str]:
    """Names of the searches with a run whose mixture has domain `name`, oldest first."""
    with open_db(db, read_only=True, wait_s=wait_s) as con:
        return [r[0] for r in con.execute(
            "SELECT s.name FROM searches s WHERE EXISTS (SELECT 1 FROM runs r WHERE r.search_id = s.id"
            " AND list_contains(map_keys(r.mixture), ?)) ORDER BY s.created_at, s.name", [name]).fetchall()]
