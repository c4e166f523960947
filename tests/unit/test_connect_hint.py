"""A refused connection to this machine says what most often causes it: no local stack."""

from __future__ import annotations

import socket

import pytest
from credit_explainer import ConnectError, CreditExplainerClient


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed on leaving: nothing listens there


def test_a_refused_loopback_connection_names_the_local_stack() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with CreditExplainerClient(url, max_retries=0) as client, pytest.raises(ConnectError) as e:
        client.health()
    message = str(e.value)
    assert message.startswith(f"cannot reach the API (GET {url}/health): ")
    assert message.endswith("; is the local stack running? (credit-explainer up)")
