"""Opening the DuckDB file: locking, retries, read-only mode, migrations.

DuckDB lets one process hold a database file for writing at a time, and a read-only
process cannot open it while a writer has it. mixer therefore keeps every connection short
(open, one transaction, close) and, when the file is locked, retries with exponential
backoff for up to `wait_s` seconds before telling the user the database is busy.

Readers wait `--wait` seconds (10 by default). A search driver's writes wait
`WRITER_WAIT_S` (a day): a finished proxy run is never thrown away because someone's
`mixer sql` held the file; after `NOTICE_AFTER_S` the wait is announced once through the
notice set with `set_wait_notice` (the CLI prints it). Writers come first: while the file
is held, a writer retries every `WRITER_MAX_RETRY_S` at most, a reader backs off to 1 s,
so a reader that lets go is followed by the waiting writer, not by another reader.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from mixer.errors import MixerError
from store.schema import MIGRATIONS, SCHEMA_VERSION

DEFAULT_WAIT_S = 10.0
WRITER_WAIT_S = 24 * 3600.0
NOTICE_AFTER_S = 5.0
WRITER_MAX_RETRY_S = 0.05   # a writer retries a held lock this often at most; readers back off to 1 s
_wait_notice = None   # Callable[[str], None]: told once per connection when a wait grows long


def set_wait_notice(notice) -> None:
    """Where to say that a connection is waiting for another process's lock (None: nowhere)."""
    global _wait_notice
    _wait_notice = notice
_LOCK_MARKERS = ("could not set lock", "conflicting lock", "resource temporarily unavailable")
_CORRUPT_MARKERS = ("not a valid duckdb", "invalid", "corrupt", "checksum", "magic")


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(m in text for m in _LOCK_MARKERS)


SANDBOX = {  # `mixer sql`: no file, network or extension access beyond the store; settings locked
    "enable_external_access": False, "autoinstall_known_extensions": False,
    "autoload_known_extensions": False, "lock_configuration": True,
}


def connect(path: Path, read_only: bool, wait_s: float = DEFAULT_WAIT_S, sandbox: bool = False
            ) -> duckdb.DuckDBPyConnection:
    """Open the database, retrying while another process holds its lock."""
    start = time.monotonic()
    deadline = start + max(wait_s, 0.0)
    delay, noticed = 0.02, False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=dict(SANDBOX) if sandbox else {})
        except duckdb.Error as exc:
            if _is_lock_error(exc):
                if time.monotonic() >= deadline:
                    raise MixerError(
                        f"database {path} is busy: another process holds its lock "
                        f"(waited {wait_s:g}s; raise --wait to wait longer)") from None
                if not noticed and _wait_notice is not None and time.monotonic() - start > NOTICE_AFTER_S:
                    _wait_notice(f"waiting for the database lock: another process holds {path}")
                    noticed = True
                time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
                delay = min(delay * 2, 1.0 if read_only else WRITER_MAX_RETRY_S)
                continue
            if any(m in str(exc).lower() for m in _CORRUPT_MARKERS) or isinstance(exc, duckdb.IOException):
                raise MixerError(f"database {path} cannot be opened (corrupted or not a DuckDB file): "
                                 f"{str(exc).splitlines()[0]}") from None
            raise


def first_row(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> tuple | None:
    """The first row of a query, or None. Fetches the whole result: DuckDB refuses further
    work on a connection while a result is only partly read."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = first_row(
        con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'")[0]
    if not exists:
        return 0
    return int(first_row(con, "SELECT max(version) FROM schema_version")[0] or 0)


def check_not_newer(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version, refused (one line) when newer than this mixer understands."""
    version = schema_version(con)
    if version > SCHEMA_VERSION:
        raise MixerError(f"database schema version {version} is newer than this mixer "
                         f"understands ({SCHEMA_VERSION}); upgrade mixer")
    return version


def migrate(con: duckdb.DuckDBPyConnection, target: int = SCHEMA_VERSION) -> int:
    """Upgrade to `target` in one transaction; returns the version before the upgrade. A
    failed upgrade is rolled back whole and reported in one line."""
    before = check_not_newer(con)
    if before >= target:
        return before
    con.execute("BEGIN TRANSACTION")
    try:
        if before == 0:
            con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                        "applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)")
        for version in range(before, target):
            for statement in MIGRATIONS[version]:
                con.execute(statement)
            con.execute("INSERT INTO schema_version (version) VALUES (?)", [version + 1])
        con.execute("COMMIT")
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        raise MixerError(f"upgrading the database from schema version {before} to {target} failed, nothing was "
                         f"changed: {str(exc).splitlines()[0]}") from None
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return before


@contextmanager
def open_db(path: Path, read_only: bool = False, wait_s: float = DEFAULT_WAIT_S, sandbox: bool = False
            ) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection; a writable one is migrated to the current schema first.
    `sandbox` (read-only only) also shuts out files, network, extensions and settings."""
    if read_only and not path.exists():
        with open_db(path, read_only=False, wait_s=wait_s):
            pass
    con = connect(path, read_only=read_only, wait_s=wait_s, sandbox=sandbox and read_only)
    try:
        if read_only and check_not_newer(con) < SCHEMA_VERSION:   # an older workspace: upgraded first
            con.close()
            with open_db(path, read_only=False, wait_s=wait_s):
                pass
            con = connect(path, read_only=True, wait_s=wait_s, sandbox=sandbox)
        elif not read_only:
            migrate(con)
        yield con
    finally:
        con.close()


@contextmanager
def transaction(path: Path, wait_s: float = DEFAULT_WAIT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """One write transaction: committed on success, rolled back on any exception."""
    with open_db(path, read_only=False, wait_s=wait_s) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
