"""Injected faults (tabml.serving.faults): the setting's parsing and the middleware."""

from __future__ import annotations

import asyncio
import time

import pytest

from tabml.serving import faults


def test_parse_reads_each_fault():
    assert faults.parse("error_ratio=0.25, delay_ms=40") == faults.Faults(0.25, 40.0)
    assert faults.parse("error_ratio=1,after=30") == faults.Faults(1.0, 0.0, 30.0)
    assert faults.from_env({}) is None and faults.from_env({faults.ENV: " "}) is None


@pytest.mark.parametrize(
    ("text", "named"),
    [("error_rate=0.1", "error_rate"), ("error_ratio=x", "error_ratio='x'"),
     ("error_ratio=1.5", "error_ratio=1.5"), ("delay_ms=-1", "delay_ms=-1"),
     ("after=-2", "after=-2")],
)  # fmt: skip
def test_a_bad_setting_names_its_part(text, named):
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        faults.parse(text)


def _call(injector, path):
    sent, reached = [], []

    async def app(scope, receive, send):
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def send(message):
        sent.append(message)

    injector.app = app
    asyncio.run(injector({"type": "http", "path": path}, None, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, reached


def test_the_error_ratio_is_the_share_of_scoring_requests_failed():
    injector = faults.FaultInjector(None, ("/score",), faults.Faults(error_ratio=0.3), seed=7)
    statuses = [_call(injector, "/score")[0] for _ in range(2000)]
    assert set(statuses) == {200, 503}
    assert statuses.count(503) / len(statuses) == pytest.approx(0.3, abs=0.04)
    assert _call(injector, "/metrics") == (200, ["/metrics"])  # other routes untouched


def test_the_delay_holds_each_scoring_request():
    injector = faults.FaultInjector(None, ("/score",), faults.Faults(delay_ms=50))
    start = time.perf_counter()
    assert _call(injector, "/score") == (200, ["/score"])
    assert time.perf_counter() - start >= 0.05


def test_the_first_requests_are_spared():
    injector = faults.FaultInjector(None, ("/score",), faults.Faults(error_ratio=1, after=3))
    statuses = [_call(injector, "/score")[0] for _ in range(6)]
    assert statuses == [200, 200, 200, 503, 503, 503]
    assert _call(injector, "/metrics") == (200, ["/metrics"])  # not counted among the spared
