"""Every write to the store: short transactions, idempotent on ids."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pandas as pd

from mixer.errors import MixerError
from store.db import DEFAULT_WAIT_S, first_row, transaction
from mixer.clustering.records import ClusteringRecord
from store.records import MetricRow, RunRecord, RunRole, SearchRecord

_RUN_COLUMNS = ["run_id", "search_id", "role", "names", "weights", "schedule", "fidelity", "preset",
                "n_params", "tokens", "seed", "init_seed", "status", "error", "target", "config_hash", "pool_key"]


class NameTakenError(MixerError):
    """A search of that name exists (a default name may simply be tried again)."""


def create_search(db: Path, search: SearchRecord, wait_s: float = DEFAULT_WAIT_S) -> None:
    with transaction(db, wait_s) as con:
        insert_search(con, search)


def insert_search(con: duckdb.DuckDBPyConnection, search: SearchRecord) -> None:
    """Insert a new search inside the caller's transaction; a taken name is refused."""
    taken = first_row(con, "SELECT id FROM searches WHERE name = ? OR id = ?", [search.name, search.id])
    if taken:
        raise NameTakenError(f"a search named '{search.name}' already exists ({taken[0]})")
    con.execute(
        "INSERT INTO searches (id, name, kind, backend, evaluator, config, target, direction, status)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [search.id, search.name, search.kind.value, search.backend, search.evaluator,
         json.dumps(search.config, sort_keys=True), search.target, search.direction, search.status])


def set_search_status(db: Path, search_id: str, status: str, wait_s: float = DEFAULT_WAIT_S) -> None:
    finished = status in ("done", "cancelled", "failed")
    with transaction(db, wait_s) as con:
        con.execute(
            "UPDATE searches SET status = ?, updated_at = current_timestamp,"
            f" finished_at = {'current_timestamp' if finished else 'NULL'} WHERE id = ?",
            [status, search_id])


def _runs_frame(runs: Iterable[RunRecord]) -> pd.DataFrame:
    rows = []
    for r in runs:
        names = list(r.mixture)
        rows.append([r.id, r.search_id, RunRole(r.role).value, names, [float(r.mixture[n]) for n in names],
                     json.dumps(r.schedule) if r.schedule else None, r.fidelity, r.preset,
                     r.n_params, r.tokens, r.seed, r.init_seed, r.status, r.error, r.target, r.config_hash,
                     r.pool_key])
    frame = pd.DataFrame(rows, columns=_RUN_COLUMNS)
    for col in ("n_params", "tokens", "seed", "init_seed"):
        frame[col] = frame[col].astype("Int64")
    frame["target"] = frame["target"].astype("Float64")
    return frame


def _metrics_frame(metrics: Iterable[MetricRow]) -> pd.DataFrame:
    frame = pd.DataFrame([(m.run_id, m.step, m.tokens, m.split, m.name, m.value) for m in metrics],
                         columns=["run_id", "step", "tokens", "split", "name", "value"])
    frame["step"] = frame["step"].astype("int64")
    frame["tokens"] = frame["tokens"].astype("Int64")
    frame["value"] = frame["value"].astype("float64")
    return frame


def write_runs(db: Path, runs: list[RunRecord], metrics: list[MetricRow] = (),
               wait_s: float = DEFAULT_WAIT_S) -> None:
    """Insert or replace runs and their metrics in one transaction.

    Writing the same run id again replaces the row (never duplicates it); timestamps of the
    first write are kept, and `finished_at` is set when a run reaches done or failed.
    """
    with transaction(db, wait_s) as con:
        upsert_runs(con, runs, metrics)


def upsert_runs(con: duckdb.DuckDBPyConnection, runs: list[RunRecord], metrics: Iterable[MetricRow] = ()
                ) -> None:
    """`write_runs` inside the caller's transaction. A run id that another search owns is
    refused: one search never overwrites another's runs."""
    runs_df = _runs_frame(runs)
    metrics_df = _metrics_frame(metrics)
    con.register("new_runs", runs_df)
    clash = first_row(con, "SELECT r.run_id, r.search_id FROM runs r JOIN new_runs n ON n.run_id = r.run_id "
                           "WHERE r.search_id <> n.search_id LIMIT 1")
    if clash:
        con.unregister("new_runs")
        raise MixerError(f"run '{clash[0]}' belongs to another search ({clash[1]}); not overwritten")
    con.execute("""
        INSERT INTO runs (run_id, search_id, role, mixture, schedule, fidelity, preset, n_params, tokens,
                          seed, init_seed, status, error, target_value, config_hash, pool_key, started_at,
                          finished_at)
        SELECT run_id, search_id, role, MAP(names, weights), schedule, fidelity, preset, n_params,
               tokens, seed, init_seed, status, error, target, config_hash, pool_key,
               CASE WHEN status <> 'queued' THEN current_timestamp END,
               CASE WHEN status IN ('done', 'failed') THEN current_timestamp END
        FROM new_runs
        ON CONFLICT (run_id) DO UPDATE SET
            role = excluded.role, mixture = excluded.mixture, schedule = excluded.schedule,
            fidelity = excluded.fidelity, preset = excluded.preset,
            n_params = excluded.n_params, tokens = excluded.tokens, seed = excluded.seed,
            init_seed = excluded.init_seed,
            status = excluded.status, error = excluded.error, target_value = excluded.target_value,
            config_hash = excluded.config_hash, pool_key = excluded.pool_key,
            started_at = coalesce(runs.started_at, excluded.started_at),
            finished_at = excluded.finished_at""")
    con.unregister("new_runs")
    if len(metrics_df):
        con.register("new_metrics", metrics_df)
        con.execute("INSERT OR REPLACE INTO metrics (run_id, step, tokens, split, name, value)"
                    " SELECT run_id, step, tokens, split, name, value FROM new_metrics")
        con.unregister("new_metrics")


def upsert_domain(db: Path, meta: dict, wait_s: float = DEFAULT_WAIT_S) -> None:
    """Mirror a domain's meta.json into the `domains` table (the directory is the truth)."""
    with transaction(db, wait_s) as con:
        _upsert_domain(con, meta)


def _upsert_domain(con: duckdb.DuckDBPyConnection, meta: dict) -> None:
    con.execute(
        "INSERT OR REPLACE INTO domains (name, tokenizer, tokenizer_hash, n_docs, n_tokens, n_bytes,"
        " n_val_docs, n_val_tokens, content_hash, sources, eval_only) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [meta["name"], json.dumps(meta["tokenizer"], sort_keys=True), meta["tokenizer"].get("hash"),
         meta["n_docs"], meta["n_tokens"], meta["n_bytes"], meta["n_val_docs"], meta["n_val_tokens"],
         meta["content_hash"], json.dumps(meta["sources"]), bool(meta.get("eval_only", False))])
    _record_version(con, meta)


def _record_version(con: duckdb.DuckDBPyConnection, meta: dict) -> None:
    """A new row in `domain_versions` unless the name's current version holds this content
    (a domain removed and added again is a new version: its removal stays on record)."""
    latest = con.execute("SELECT version, content_hash, removed_at FROM domain_versions WHERE name = ?"
                         " ORDER BY version DESC LIMIT 1", [meta["name"]]).fetchone()
    if latest is not None and latest[1] == meta["content_hash"] and latest[2] is None:
        return
    con.execute("INSERT INTO domain_versions (name, version, content_hash, n_docs, n_tokens, n_val_tokens, sources,"
                " eval_only) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [meta["name"], 1 + (latest[0] if latest else 0), meta["content_hash"], meta["n_docs"],
                 meta["n_tokens"], meta["n_val_tokens"], json.dumps(meta["sources"]),
                 bool(meta.get("eval_only", False))])


def _remove_domain(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Its row goes; its versions stay, the latest marked removed."""
    con.execute("DELETE FROM domains WHERE name = ?", [name])
    con.execute("UPDATE domain_versions SET removed_at = current_timestamp WHERE name = ? AND removed_at IS NULL",
                [name])


def remove_domain(db: Path, name: str, wait_s: float = DEFAULT_WAIT_S) -> None:
    with transaction(db, wait_s) as con:
        _remove_domain(con, name)


def record_proposals(db: Path, search_id: str, backend: str, round_index: int, runs: list[RunRecord],
                     wait_s: float = DEFAULT_WAIT_S) -> None:
    """Queued runs and their proposal rows, in one transaction."""
    with transaction(db, wait_s) as con:
        upsert_runs(con, runs)
        for run in runs:
            con.execute("INSERT OR REPLACE INTO proposals (search_id, run_id, round, backend) VALUES (?, ?, ?, ?)",
                        [search_id, run.id, round_index, backend])


def write_recommendation(db: Path, search_id: str, mixture: dict[str, float], predicted: float | None,
                         predicted_std: float | None, evidence: dict, validation_run_id: str | None = None,
                         wait_s: float = DEFAULT_WAIT_S) -> None:
    names = list(mixture)
    with transaction(db, wait_s) as con:
        con.execute("INSERT INTO recommendations (search_id, mixture, predicted, predicted_std, evidence,"
                    " validation_run_id) VALUES (?, MAP(?, ?), ?, ?, ?, ?)",
                    [search_id, names, [float(mixture[n]) for n in names], predicted, predicted_std,
                     json.dumps(evidence, default=str), validation_run_id])


def requeue_running(db: Path, search_id: str, wait_s: float = DEFAULT_WAIT_S) -> None:
    """Runs left `running` by a driver that stopped (Ctrl-C) go back to `queued`."""
    with transaction(db, wait_s) as con:
        con.execute("UPDATE runs SET status = 'queued' WHERE search_id = ? AND status = 'running'", [search_id])


def write_clustering(db: Path, clustering: ClusteringRecord, domains: Iterable[dict] = (),
                     retired: Iterable[str] = (), wait_s: float = DEFAULT_WAIT_S) -> None:
    """Replace clustering `clustering.name`: its row, its clusters, the rows of its
    `domains` (meta dicts) and the removal of `retired` domain rows, in one transaction."""
    with transaction(db, wait_s) as con:
        for name in retired:
            _remove_domain(con, name)
        for meta in domains:
            _upsert_domain(con, meta)
        con.execute("DELETE FROM clusters WHERE clustering = ?", [clustering.name])
        con.execute("DELETE FROM clusterings WHERE name = ?", [clustering.name])
        con.execute("INSERT INTO clusterings (name, embedder, n_docs, n_sample, config, sources)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [clustering.name, clustering.embedder, clustering.n_docs, clustering.n_sample,
                     json.dumps(clustering.config, sort_keys=True), json.dumps(clustering.sources)])
        for c in clustering.clusters:
            con.execute("INSERT INTO clusters (clustering, cluster, domain, n_docs, n_tokens, centroid_norm,"
                        " top_terms, parents) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [clustering.name, c.cluster, c.domain, c.n_docs, c.n_tokens, c.centroid_norm,
                         list(c.top_terms), [int(p) for p in c.parents]])


def remove_clustering(db: Path, name: str, wait_s: float = DEFAULT_WAIT_S) -> None:
    with transaction(db, wait_s) as con:
        con.execute("DELETE FROM clusters WHERE clustering = ?", [name])
        con.execute("DELETE FROM clusterings WHERE name = ?", [name])
