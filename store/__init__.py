"""The DuckDB run store: schema and migrations, writes, read-only queries."""

from mixer.layout import check_layout

check_layout()  # fail loudly if another distribution owns this name

from mixer.clustering.records import ClusteringRecord, ClusterRecord
from store.db import DEFAULT_WAIT_S, migrate, open_db, schema_version, transaction
from store.importer import ImportReport, ImportSpec, import_runs
from store.reads import (StoreInfo, clustering_names, domain_names, domain_versions, get_clustering, get_search, latest_recommendation, list_runs, list_searches, next_search_name,
                         run_metrics, run_costs, run_version, run_wall_times, search_exists, search_version, run_sql, run_summary, search_runs, searches_using_domain,
                         store_info)
from store.records import MetricRow, RunRecord, RunRole, SearchKind, SearchRecord, config_hash, new_id
from store.schema import SCHEMA_VERSION
from store.writes import (create_search, record_proposals, remove_clustering, remove_domain, requeue_running, set_search_status,
                          upsert_domain, write_clustering, write_recommendation, write_runs)

__all__ = [
    "DEFAULT_WAIT_S", "SCHEMA_VERSION", "ClusteringRecord", "ClusterRecord", "clustering_names", "get_clustering",
    "remove_clustering", "write_clustering", "ImportReport", "ImportSpec", "MetricRow", "RunRecord", "RunRole", "SearchKind",
    "SearchRecord", "StoreInfo", "run_metrics", "run_summary", "run_version", "run_wall_times", "search_version", "config_hash", "create_search", "get_search", "import_runs",
    "domain_names", "domain_versions", "latest_recommendation", "list_runs", "list_searches", "migrate", "new_id", "next_search_name", "open_db",
    "record_proposals", "requeue_running", "remove_domain", "run_costs", "run_sql", "schema_version",
    "search_exists", "search_runs", "searches_using_domain", "set_search_status", "store_info", "transaction", "upsert_domain", "write_recommendation",
    "write_runs",
]
