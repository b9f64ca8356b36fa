"""A Ray address that does not answer is an error within seconds, not a hang."""

import socket
import time

import pytest

from mixer import MixerError
from proxies.runner import check_reachable


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("address", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}"])
def test_an_address_nobody_listens_on_fails_fast(address):
    address = address.format(port=_closed_port())
    start = time.perf_counter()
    with pytest.raises(MixerError, match=f"cannot connect to Ray at {address}"):
        check_reachable(address)
    assert time.perf_counter() - start < 10


def test_malformed_addresses_are_named():
    with pytest.raises(MixerError, match="cannot connect to Ray at nowhere: expected HOST:PORT"):
        check_reachable("nowhere")


def test_a_listening_address_passes():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_reachable(f"127.0.0.1:{server.getsockname()[1]}")
    check_reachable("auto")
