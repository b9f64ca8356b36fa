"""One driver per search: the second is refused, a dead one's lease is taken over."""

import os
import subprocess
import sys

import pytest

from mixer import MixerError
from search import driver, lease, views
from store import get_search
from tests.search.test_driver import _spec, table_ws  # noqa: F401 (fixture)


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)


@pytest.mark.slow  # a search end to end under its lease
def test_a_second_driver_is_refused_naming_the_first(table_ws):  # noqa: F811
    search = driver.create(table_ws, _spec(name="busy", runs=4))
    held = lease.acquire(table_ws, search.id, search.name)
    with pytest.raises(MixerError, match=f"search 'busy' is already being run by pid {os.getpid()} on "):
        driver.run(table_ws, search.name)
    summary, _ = views.status(table_ws, get_search(table_ws.db_path, search.name))
    assert summary["driver"].startswith(f"alive: pid {os.getpid()}")
    lease.release(held)
    assert driver.run(table_ws, search.name) is not None  # free again
    assert not lease.lease_path(table_ws, search.id).exists()  # released when the driver ends


@pytest.mark.slow  # a search end to end under its lease
def test_a_dead_drivers_lease_is_taken_over_and_status_says_so(table_ws):  # noqa: F811
    search = driver.create(table_ws, _spec(name="orphan", runs=4))
    path = lease.lease_path(table_ws, search.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'{{"search": "orphan", "pid": {_dead_pid()}, "host": "{lease.HOST}", "started_at": 0}}')
    from store import set_search_status

    set_search_status(table_ws.db_path, search.id, "running")  # as a kill -9 leaves it
    summary, _ = views.status(table_ws, get_search(table_ws.db_path, search.name))
    assert summary["driver"].startswith("dead (pid") and summary["status"].startswith("interrupted")
    assert driver.run(table_ws, search.name) is not None


@pytest.mark.slow  # a search end to end under its lease
def test_the_lease_is_held_while_results_arrive(table_ws):  # noqa: F811
    search = driver.create(table_ws, _spec(name="beat", runs=3, parallel=1, backend="random", options={}))
    seen = []

    class Watch:
        def __init__(self, inner):
            self.inner = inner
            self.parallel, self.instant = inner.parallel, inner.instant

        def evaluate(self, runs):
            for run, result in self.inner.evaluate(runs):
                seen.append(lease.read_lease(table_ws, search.id))
                yield run, result

    driver.run(table_ws, search.name, evaluator=Watch)
    assert len(seen) == 3 and all(s is not None and s.pid == os.getpid() for s in seen)
