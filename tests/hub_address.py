"""Test helpers for the hub's address: hub loaders probe it before any download (tasks/data.py
`require_hub`). `reachable_hub` points the hub client at a loopback socket that accepts
connections, for tests that replace the download itself with local files (no hub is reachable
here); `closed_hub` points it at a loopback port that refuses them."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@contextmanager
def reachable_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Online mode, with the hub endpoint at a listening loopback socket; yields the endpoint."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
        _point_at(monkeypatch, endpoint)
        yield endpoint


def closed_hub(monkeypatch: pytest.MonkeyPatch) -> str:
    """Online mode, with the hub endpoint at a loopback port nothing listens on; returns it."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    _point_at(monkeypatch, endpoint)
    return endpoint


def _point_at(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    import huggingface_hub.constants

    from tasks import data

    data._unreachable.cache_clear()  # a loopback port may be reused by a later test
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
