"""Snapshots: one store read per document per interval, shared; a busy store serves the
last read marked stale; other errors reach the caller."""

from __future__ import annotations

import json
import threading

import pytest

from mixer.errors import MixerError
from search.web.snapshots import Snapshots


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def documents(snapshots: Snapshots):
    """Snapshots.get returning the documents (each body is its document's JSON)."""
    def get(*args):
        snapshot = snapshots.get(*args)
        assert json.loads(snapshot.body) == snapshot.document
        return snapshot.document
    return get


def test_reads_once_per_interval_and_per_key():
    clock, reads = Clock(), []
    get = documents(Snapshots(interval_s=1.0, clock=clock))
    read = lambda key: lambda: reads.append(key) or {"n": len(reads)}  # noqa: E731
    assert get("a", read("a")) == {"n": 1}
    clock.now = 0.9
    assert get("a", read("a")) == {"n": 1} and get("b", read("b")) == {"n": 2}
    clock.now = 1.0
    assert get("a", read("a")) == {"n": 3}
    assert reads == ["a", "b", "a"]


def test_concurrent_requests_share_one_read():
    reads, gate = [], threading.Event()

    def slow_read():
        reads.append(1)
        gate.wait(5)
        return {"n": len(reads)}

    get = documents(Snapshots(interval_s=60.0))
    results = []
    threads = [threading.Thread(target=lambda: results.append(get("k", slow_read))) for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert len(reads) == 1 and results == [{"n": 1}] * 8


def test_busy_store_serves_the_last_read_as_stale():
    clock = Clock()
    snapshots = Snapshots(interval_s=1.0, clock=clock)
    get = documents(snapshots)
    get("k", lambda: {"n": 1})
    clock.now = 5.0

    def busy():
        raise MixerError("database /x/mixer.duckdb is busy: another process holds its lock (waited 10s)")

    assert get("k", busy) == {"n": 1, "stale": True}
    with pytest.raises(MixerError, match="busy"):
        get("other", busy)       # nothing read before: the caller says so (503)
    with pytest.raises(MixerError, match="no search"):
        get("k", lambda: (_ for _ in ()).throw(MixerError("no search named 'x'")))


def test_unchanged_fingerprint_keeps_the_document():
    clock, reads, version = Clock(), [], {"v": 1}
    get = documents(Snapshots(interval_s=1.0, clock=clock))
    read = lambda: reads.append(1) or {"n": len(reads)}  # noqa: E731
    assert get("k", read, lambda: version["v"]) == {"n": 1}
    clock.now = 2.0
    assert get("k", read, lambda: version["v"]) == {"n": 1}    # checked, same: not read again
    version["v"] = 2
    assert get("k", read, lambda: version["v"]) == {"n": 1}    # within the interval of the check
    clock.now = 3.5
    assert get("k", read, lambda: version["v"]) == {"n": 2}
    assert len(reads) == 2
