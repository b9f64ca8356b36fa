"""Documents read from the store at most once per interval, shared by every request.

`mixer serve` must never make a writing driver wait: DuckDB lets one process hold the file
for writing, and every read-only connection is a moment the driver's next write retries.
Page loads therefore do not each open the store: the first request for a document after
`interval_s` checks a cheap fingerprint of it (one short query) and reads the document
again only when that changed; requests in between get the last read. When the store is
busy (a writer holds it longer than a reader waits), the last document is served again,
marked stale.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from mixer.errors import MixerError

BUSY_MARKER = "is busy"   # store.db's message when another process holds the lock


def encode(document: dict) -> bytes:
    """JSON as the API sends it (compact, UTF-8; NaN refused: documents carry None)."""
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Snapshot:
    document: dict         # with `stale: True` when the store was busy and this is the last read
    body: bytes            # the document encoded once per read, not once per request


@dataclass
class _Entry:
    snapshot: Snapshot
    version: Hashable      # the fingerprint it was read at (None: none given)
    checked_at: float


class Snapshots:
    def __init__(self, interval_s: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.interval_s = interval_s
        self._clock = clock
        self._entries: dict[Hashable, _Entry] = {}   # documents that were there (a miss is never kept)
        self._lock = threading.Lock()                  # one store read at a time: requests wait and share it

    def get(self, key: Hashable, read: Callable[[], dict], version: Callable[[], Hashable] | None = None
            ) -> Snapshot:
        """The document `key`. Within `interval_s` of the last check: the last document.
        After it: `version()` (a cheap fingerprint of what the document shows) is asked,
        and the document is read again only when the fingerprint changed (or there is
        none). A busy store serves the last document marked stale; other errors (a search
        that is not there) reach the caller."""
        with self._lock:
            entry, now = self._entries.get(key), self._clock()
            if entry is not None and now - entry.checked_at < self.interval_s:
                return entry.snapshot
            try:
                stamp = version() if version is not None else None
                if entry is not None and version is not None and stamp == entry.version:
                    entry.checked_at = now
                    return entry.snapshot
                document = read()
            except MixerError as error:
                if BUSY_MARKER in str(error) and entry is not None:
                    stale = {**entry.snapshot.document, "stale": True}
                    return Snapshot(stale, encode(stale))
                raise
            snapshot = Snapshot(document, encode(document))
            self._entries[key] = _Entry(snapshot, stamp, now)
            return snapshot
