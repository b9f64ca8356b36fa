"""The DuckDB schema as an ordered list of migrations.

`MIGRATIONS[i]` upgrades a database from version i to version i + 1. A new workspace runs
them all; an older one runs the missing ones, all in one transaction, so an upgrade either
completes or leaves the database exactly as it was. Never edit a released migration: add
one.
"""

from __future__ import annotations

# The final per-domain values of each run: its split 'val' metrics at its last evaluated step.
_FINAL_VALUES = """
    WITH final_step AS (
        SELECT run_id, max(step) AS step FROM metrics WHERE split = 'val' GROUP BY run_id
    ), finals AS (
        SELECT m.run_id,
               map_from_entries(list({'k': m.name, 'v': m.value} ORDER BY m.name)) AS final_values
        FROM metrics m JOIN final_step f ON m.run_id = f.run_id AND m.step = f.step
        WHERE m.split = 'val'
        GROUP BY m.run_id
    )
"""

V1_CORE = [
    """CREATE TABLE domains (
        name VARCHAR PRIMARY KEY,
        tokenizer VARCHAR NOT NULL,
        tokenizer_hash VARCHAR,
        n_docs BIGINT NOT NULL,
        n_tokens BIGINT NOT NULL,
        n_bytes BIGINT NOT NULL,
        n_val_docs BIGINT NOT NULL,
        n_val_tokens BIGINT NOT NULL,
        content_hash VARCHAR NOT NULL,
        sources VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    )""",
    """CREATE TABLE searches (
        id VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL UNIQUE,
        backend VARCHAR NOT NULL,
        evaluator VARCHAR NOT NULL,
        config VARCHAR NOT NULL DEFAULT '{}',
        target VARCHAR,
        direction VARCHAR NOT NULL DEFAULT 'minimize'
            CHECK (direction IN ('minimize', 'maximize')),
        status VARCHAR NOT NULL
            CHECK (status IN ('created', 'running', 'done', 'cancelled', 'failed')),
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        finished_at TIMESTAMP
    )""",
    """CREATE TABLE runs (
        id VARCHAR PRIMARY KEY,
        search_id VARCHAR NOT NULL,
        mixture MAP(VARCHAR, DOUBLE) NOT NULL,
        schedule VARCHAR,
        fidelity VARCHAR,
        preset VARCHAR,
        n_params BIGINT,
        tokens BIGINT,
        seed BIGINT,
        status VARCHAR NOT NULL
            CHECK (status IN ('queued', 'running', 'done', 'failed')),
        error VARCHAR,
        target DOUBLE,
        config_hash VARCHAR,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        started_at TIMESTAMP,
        finished_at TIMESTAMP
    )""",
    "CREATE INDEX runs_by_search ON runs (search_id)",
    """CREATE TABLE metrics (
        run_id VARCHAR NOT NULL,
        step BIGINT NOT NULL,
        tokens BIGINT,
        split VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        value DOUBLE,
        PRIMARY KEY (run_id, step, split, name)
    )""",
]

V2_SEARCH = [
    """CREATE TABLE proposals (
        search_id VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL,
        round INTEGER NOT NULL,
        backend VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (search_id, run_id)
    )""",
    """CREATE TABLE recommendations (
        search_id VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        mixture MAP(VARCHAR, DOUBLE) NOT NULL,
        predicted DOUBLE,
        predicted_std DOUBLE,
        evidence VARCHAR NOT NULL DEFAULT '{}',
        validation_run_id VARCHAR
    )""",
    # One row per run: mixture, fidelity, target value, and the final per-domain values
    # (the split 'val' metrics at the run's last evaluated step).
    """CREATE VIEW run_summary AS""" + _FINAL_VALUES + """    SELECT r.id AS run_id, s.name AS search, r.search_id, r.status, r.mixture, r.fidelity,
           r.preset, r.n_params, r.tokens, r.seed, r.target AS target_value, f.final_values,
           r.error, r.created_at, r.finished_at
    FROM runs r
    LEFT JOIN searches s ON s.id = r.search_id
    LEFT JOIN finals f ON f.run_id = r.id""",
]

V3_POOL_KEY = [
    # The table entry a run evaluated (pool mode of the table evaluator).
    "ALTER TABLE runs ADD COLUMN pool_key VARCHAR",
    "DROP VIEW run_summary",
    """CREATE VIEW run_summary AS""" + _FINAL_VALUES + """    SELECT r.id AS run_id, s.name AS search, r.search_id, r.status, r.mixture, r.fidelity,
           r.pool_key, r.preset, r.n_params, r.tokens, r.seed, r.target AS target_value,
           f.final_values, r.error, r.created_at, r.finished_at
    FROM runs r
    LEFT JOIN searches s ON s.id = r.search_id
    LEFT JOIN finals f ON f.run_id = r.id""",
]

V4_INIT_SEED = [
    # The seed of a run's model initialisation when it is not the run's seed (a search's own
    # runs share one initialisation; their seeds set the data order).
    "ALTER TABLE runs ADD COLUMN init_seed BIGINT",
    "DROP VIEW run_summary",
    """CREATE VIEW run_summary AS""" + _FINAL_VALUES + """    SELECT r.id AS run_id, s.name AS search, r.search_id, r.status, r.mixture, r.fidelity,
           r.pool_key, r.preset, r.n_params, r.tokens, r.seed, r.init_seed, r.target AS target_value,
           f.final_values, r.error, r.created_at, r.finished_at
    FROM runs r
    LEFT JOIN searches s ON s.id = r.search_id
    LEFT JOIN finals f ON f.run_id = r.id""",
]

V5_CLUSTERS = [
    # `mixer corpus cluster`: one row per clustering, one per final cluster (a domain).
    """CREATE TABLE clusterings (
        name VARCHAR PRIMARY KEY,
        embedder VARCHAR NOT NULL,
        n_docs BIGINT NOT NULL,
        n_sample BIGINT NOT NULL,
        config VARCHAR NOT NULL DEFAULT '{}',
        sources VARCHAR NOT NULL DEFAULT '[]',
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    )""",
    """CREATE TABLE clusters (
        clustering VARCHAR NOT NULL,
        cluster INTEGER NOT NULL,
        domain VARCHAR NOT NULL,
        n_docs BIGINT NOT NULL,
        n_tokens BIGINT NOT NULL,
        centroid_norm DOUBLE,
        top_terms VARCHAR[],
        parents INTEGER[],
        PRIMARY KEY (clustering, cluster)
    )""",
]

RUN_ROLES = ("search", "baseline", "validation", "replicate", "transfer", "imported", "online", "train")
SEARCH_KINDS = ("search", "import", "online", "proxy-train")


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


# What a search is, from what version 5 stored: an import's backend, an online run's
# evaluator, `mixer proxy train`'s name.
_KIND_OF_V5 = ("CASE WHEN backend = 'import' THEN 'import' WHEN evaluator = 'online' THEN 'online'"
               " WHEN starts_with(name, 'proxy-train-') THEN 'proxy-train' ELSE 'search' END")

# Why a run was made, from what version 5 stored (the last time ids carry meaning): the
# search's kind, its proposals, and the labels of extra runs (`<search>/validation`,
# `/replicate/`, `/transfer`, a demo's `recommended/seed-k`; other extra runs were baselines).
_ROLE_OF_V5 = """CASE
        WHEN s.kind = 'import' THEN 'imported'
        WHEN s.kind = 'proxy-train' THEN 'train'
        WHEN s.kind = 'online' THEN CASE WHEN ends_with(r.id, '/online') THEN 'online' ELSE 'baseline' END
        WHEN (r.search_id, r.id) IN (SELECT (search_id, run_id) FROM proposals) THEN 'search'
        WHEN starts_with(r.id, s.name || '/validation') OR starts_with(r.id, s.name || '/recommended/')
            THEN 'validation'
        WHEN starts_with(r.id, s.name || '/replicate/') THEN 'replicate'
        WHEN starts_with(r.id, s.name || '/transfer') THEN 'transfer'
        ELSE 'baseline' END"""

_RUN_SUMMARY_V6 = """CREATE VIEW run_summary AS""" + _FINAL_VALUES + """    SELECT r.run_id, s.name AS search, r.search_id, s.kind, r.role, r.status, r.mixture, r.fidelity,
           r.pool_key, r.preset, r.n_params, r.tokens, r.seed, r.init_seed, r.target_value,
           f.final_values, r.error, r.created_at, r.started_at, r.finished_at
    FROM runs r
    LEFT JOIN searches s ON s.id = r.search_id
    LEFT JOIN finals f ON f.run_id = r.run_id"""

V6_ROLES_AND_NAMES = [
    # Roles and kinds as columns (never parsed from ids again); one vocabulary in SQL: a run
    # is `run_id` and its value `target_value` everywhere; JSON columns typed JSON. DuckDB
    # cannot rename a column others depend on, so the tables are rebuilt.
    "DROP VIEW run_summary",
    f"""CREATE TABLE searches_v6 (
        id VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL UNIQUE,
        kind VARCHAR NOT NULL CHECK (kind IN ({_quoted(SEARCH_KINDS)})),
        backend VARCHAR NOT NULL,
        evaluator VARCHAR NOT NULL,
        config JSON NOT NULL DEFAULT '{{}}',
        target VARCHAR,
        direction VARCHAR NOT NULL DEFAULT 'minimize'
            CHECK (direction IN ('minimize', 'maximize')),
        status VARCHAR NOT NULL
            CHECK (status IN ('created', 'running', 'done', 'cancelled', 'failed')),
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        finished_at TIMESTAMP
    )""",
    f"""INSERT INTO searches_v6 SELECT id, name, {_KIND_OF_V5}, backend, evaluator, config, target, direction,
        status, created_at, updated_at, finished_at FROM searches""",
    f"""CREATE TABLE runs_v6 (
        run_id VARCHAR PRIMARY KEY,
        search_id VARCHAR NOT NULL,
        role VARCHAR NOT NULL CHECK (role IN ({_quoted(RUN_ROLES)})),
        mixture MAP(VARCHAR, DOUBLE) NOT NULL,
        schedule JSON,
        fidelity VARCHAR,
        pool_key VARCHAR,
        preset VARCHAR,
        n_params BIGINT,
        tokens BIGINT,
        seed BIGINT,
        init_seed BIGINT,
        status VARCHAR NOT NULL
            CHECK (status IN ('queued', 'running', 'done', 'failed')),
        error VARCHAR,
        target_value DOUBLE,
        config_hash VARCHAR,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        started_at TIMESTAMP,
        finished_at TIMESTAMP
    )""",
    f"""INSERT INTO runs_v6 SELECT r.id, r.search_id, {_ROLE_OF_V5}, r.mixture, r.schedule, r.fidelity, r.pool_key,
        r.preset, r.n_params, r.tokens, r.seed, r.init_seed, r.status, r.error, r.target, r.config_hash,
        r.created_at, r.started_at, r.finished_at
        FROM runs r LEFT JOIN searches_v6 s ON s.id = r.search_id""",
    "DROP TABLE runs",
    "ALTER TABLE runs_v6 RENAME TO runs",
    "DROP TABLE searches",
    "ALTER TABLE searches_v6 RENAME TO searches",
    """CREATE TABLE recommendations_v6 (
        search_id VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        mixture MAP(VARCHAR, DOUBLE) NOT NULL,
        predicted DOUBLE,
        predicted_std DOUBLE,
        evidence JSON NOT NULL DEFAULT '{}',
        validation_run_id VARCHAR
    )""",
    "INSERT INTO recommendations_v6 SELECT * FROM recommendations",
    "DROP TABLE recommendations",
    "ALTER TABLE recommendations_v6 RENAME TO recommendations",
    _RUN_SUMMARY_V6,
]

# A run's final values, version 7: the held-out losses of its domains (split 'val') and of the
# workspace's eval-only sets (split 'eval') at its last evaluated step, in one map.
_FINAL_VALUES_V7 = _FINAL_VALUES.replace("WHERE m.split = 'val'", "WHERE m.split IN ('val', 'eval')")

V7_EVAL_SETS = [
    # Eval-only sets: measured by every run, never trained on; their final losses are final values.
    "ALTER TABLE domains ADD COLUMN eval_only BOOLEAN NOT NULL DEFAULT false",
    "DROP VIEW run_summary",
    _RUN_SUMMARY_V6.replace(_FINAL_VALUES, _FINAL_VALUES_V7),
]

V8_DOMAIN_VERSIONS = [
    # Every content a domain name has held, numbered from 1: a replaced domain keeps its old
    # version's row (a search knows what changed since it ran: `mixer corpus diff`); a removed
    # one is marked, not deleted. Existing domains become version 1.
    """CREATE TABLE domain_versions (
        name VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        content_hash VARCHAR NOT NULL,
        n_docs BIGINT NOT NULL,
        n_tokens BIGINT NOT NULL,
        n_val_tokens BIGINT NOT NULL,
        sources VARCHAR NOT NULL,
        eval_only BOOLEAN NOT NULL DEFAULT false,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        removed_at TIMESTAMP,
        PRIMARY KEY (name, version)
    )""",
    """INSERT INTO domain_versions SELECT name, 1, content_hash, n_docs, n_tokens, n_val_tokens, sources, eval_only,
        created_at, NULL FROM domains""",
]

MIGRATIONS: list[list[str]] = [V1_CORE, V2_SEARCH, V3_POOL_KEY, V4_INIT_SEED, V5_CLUSTERS, V6_ROLES_AND_NAMES,
                               V7_EVAL_SETS, V8_DOMAIN_VERSIONS]
SCHEMA_VERSION = len(MIGRATIONS)
