"""An MLflow server that does not answer stops a stage at once, in one line naming it."""

from __future__ import annotations

import socket
import time

import pytest
from testkit.server import free_port

from tabml import tracking
from tabml.io import DataError
from tabml.params import TrackingParams
from tabml.report_data import mlflow_production


@pytest.fixture(autouse=True)
def keep_mlflow_http_settings(monkeypatch):
    """`configure` sets MLflow's HTTP timeout and retries when unset: keep them to this test."""
    for name in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
        monkeypatch.setenv(name, "3")


@pytest.fixture
def silent_server():
    """A socket that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_configure_stops_in_one_line_within_the_timeout(monkeypatch, silent_server, kind):
    uri = silent_server if kind == "silent" else f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    started = time.monotonic()
    with pytest.raises(DataError) as info:
        tracking.configure(TrackingParams(timeout_seconds=1, max_retries=0))
    assert time.monotonic() - started < 30  # MLflow's own client would retry for minutes
    message = str(info.value)
    assert uri in message and "MLFLOW_TRACKING_URI" in message and "\n" not in message


def test_the_report_says_so_and_goes_on(monkeypatch, silent_server):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", silent_server)
    found = mlflow_production("tabml", settings=TrackingParams(timeout_seconds=1))
    assert found.status == "error" and "does not answer within 1 s" in found.error


def test_a_local_store_needs_no_server(tmp_path):
    for uri in (f"sqlite:///{tmp_path / 'mlflow.db'}", f"file://{tmp_path}/mlruns"):
        assert tracking.unanswered(uri, TrackingParams(timeout_seconds=1)) is None
