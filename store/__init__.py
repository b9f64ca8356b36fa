"""The DuckDB run store: schema and migrations, writes, read-only queries."""

from store.db import DEFAULT_WAIT_S, migrate, open_db, schema_version, transaction
from store.importer import ImportReport, ImportSpec, import_runs
from store.reads import (StoreInfo, get_search, latest_recommendation, list_runs, list_searches, proposed_run_ids,
                         run_seconds, run_sql, search_runs, store_info)
from store.records import MetricRow, RunRecord, SearchRecord, config_hash, new_id
from store.schema import SCHEMA_VERSION
from store.writes import (create_search, record_proposals, remove_domain, set_search_status, upsert_domain,
                          write_recommendation, write_runs)

__all__ = [
    "DEFAULT_WAIT_S", "SCHEMA_VERSION", "ImportReport", "ImportSpec", "MetricRow", "RunRecord",
    "SearchRecord", "StoreInfo", "config_hash", "create_search", "get_search", "import_runs",
    "latest_recommendation", "list_runs", "proposed_run_ids", "list_searches", "record_proposals", "write_recommendation", "migrate", "new_id", "open_db", "remove_domain", "upsert_domain", "run_seconds", "run_sql", "schema_version", "search_runs",
    "set_search_status", "store_info", "transaction", "write_runs",
]
