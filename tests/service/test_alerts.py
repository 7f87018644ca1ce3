"""The alert rules on a real Prometheus and Alertmanager (Debian's packages, on 127.0.0.1):
three `bentoml serve` of the bento, one answering half its scoring requests with 503
(`TABML_FAULTS=error_ratio=0.5`), one adding 0.7 s to each (`delay_ms=700`), one healthy, each
under the same steady traffic. Prometheus scrapes them every second with
deploy/prometheus/rules.yml loaded; Alertmanager sends what fires to a webhook this module
serves. The error alert must reach the webhook for the failing service, the latency alert for
the slow one, and nothing for the healthy one.

The rules are loaded as they are except for their windows: every range and `for:` duration is
divided by SPEEDUP (5m -> 15s), so that a 1 s scrape judges in seconds what production judges
in minutes. Expressions and thresholds are unchanged.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import joblib
import pandas as pd
import pytest
from testkit import prometheus
from testkit.server import HOST, free_port, running

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(prometheus.missing()), reason="make system-packages installs them"),
]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/rules.yml"
SPEEDUP = 20
SECONDS = {"m": 60, "h": 3600, "d": 86400}
FAULTS = {"failing": "error_ratio=0.5", "slow": "delay_ms=700", "healthy": ""}
EXPECTED = {("TabmlHighErrorRatio", "failing"), ("TabmlHighLatency", "slow")}
DEADLINE = 75.0  # seconds for both alerts to reach the webhook


def faster(text: str, factor: int = SPEEDUP) -> str:
    """The rules with each `[5m]` range and `for: 5m` divided by `factor`."""

    def scaled(match: re.Match) -> str:
        seconds = int(match["n"]) * SECONDS[match["unit"]] // factor
        return f"{match['pre']}{seconds}s{match['post']}"

    duration = r"(?P<n>\d+)(?P<unit>[mhd])"
    text = re.sub(rf"(?P<pre>\[){duration}(?P<post>\])", scaled, text)
    return re.sub(rf"(?P<pre>\bfor: ){duration}(?P<post>)$", scaled, text, flags=re.M)


def test_the_windows_are_scaled_and_nothing_else():
    text = RULES.read_text()
    fast = faster(text)
    assert "[5m]" in text and "[15s]" in fast and "[5m]" not in fast
    assert "for: 15m" in text and "for: 45s" in fast
    unscaled = re.sub(r"\[\d+s\]|for: \d+s", "", fast)
    assert unscaled == re.sub(r"\[\d+[mhd]\]|for: \d+[mhd]", "", text)


class Webhook:
    """Alertmanager's webhook receiver: records each alert it is sent, with when."""

    def __init__(self) -> None:
        self.alerts: list[tuple[float, dict]] = []
        received = self.alerts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                for alert in json.loads(body)["alerts"]:
                    received.append((time.monotonic(), alert))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, free_port()), Handler)
        self.url = f"http://{HOST}:{self.server.server_port}/alerts"

    def firing(self) -> set[tuple[str, str]]:
        return {
            (a["labels"]["alertname"], a["labels"].get("job", ""))
            for _, a in self.alerts
            if a["status"] == "firing"
        }


@contextlib.contextmanager
def serving(webhook: Webhook) -> Iterator[None]:
    thread = threading.Thread(target=webhook.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        webhook.server.shutdown()
        webhook.server.server_close()


def traffic(url: str, records: list[dict], stop: threading.Event) -> None:
    """Scoring requests one after another until `stop` (about 10 a second when healthy)."""
    with httpx.Client(base_url=url, timeout=30) as client:
        i = 0
        while not stop.is_set():
            client.post("/score", json={"client": records[i % len(records)]})
            i += 1
            stop.wait(0.1)


@pytest.fixture(scope="module")
def alerted(bento, pipeline, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("alerts")
    rules = tmp / "rules.yml"
    rules.write_text(faster(RULES.read_text()))
    test = pd.read_parquet(pipeline.path / "data/processed/test.parquet")
    features = list(joblib.load(pipeline.path / "models/model.joblib").feature_names_in_)
    records = json.loads(test[features].head(50).to_json(orient="records"))
    webhook, stop = Webhook(), threading.Event()
    with contextlib.ExitStack() as stack:
        servers = {}
        for job, faults in FAULTS.items():
            port = free_port()
            # A BentoML home of its own: a server keeps its Prometheus files in its home, and
            # servers sharing one would show each other's counts. The stores are shared.
            home = tmp / f"home-{job}"
            home.mkdir()
            for store in ("bentos", "models"):
                (home / store).symlink_to(Path(bento.env["BENTOML_HOME"]) / store)
            env = {**bento.env, "BENTOML_HOME": str(home),
                   "TABML_PREDICTION_LOG": str(tmp / f"log-{job}")}  # fmt: skip
            if faults:
                env["TABML_FAULTS"] = faults
            cmd = ["bentoml", "serve", bento.bento_tag, "--host", HOST, "--port", str(port)]
            servers[job] = stack.enter_context(
                running(cmd, port, tmp / f"{job}.log", env=env, cwd=pipeline.path)
            )
        stack.enter_context(serving(webhook))
        manager = stack.enter_context(prometheus.alertmanager(webhook.url))
        server = stack.enter_context(
            prometheus.prometheus(
                {job: [s.url.removeprefix("http://")] for job, s in servers.items()},
                rules=[rules],
                alertmanager=manager.url,
            )
        )
        prometheus.wait_for_targets(server, len(servers))
        threads = [
            threading.Thread(target=traffic, args=(s.url, records, stop), daemon=True)
            for s in servers.values()
        ]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            while time.monotonic() - start < DEADLINE and not webhook.firing() >= EXPECTED:
                time.sleep(0.5)
            # What Prometheus holds for the healthy service, pending alerts included.
            healthy = prometheus.query(server, 'ALERTS{job="healthy"}')
            requests = prometheus.query(server, "job:tabml_requests:rate5m")
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
    return {
        "webhook": webhook,
        "start": start,
        "healthy": healthy,
        "requests": {r["metric"]["job"]: float(r["value"][1]) for r in requests},
    }


def test_injected_errors_fire_the_error_alert_within_its_window(alerted):
    webhook = alerted["webhook"]
    assert ("TabmlHighErrorRatio", "failing") in webhook.firing(), webhook.alerts
    first = min(t for t, a in webhook.alerts if a["labels"]["alertname"] == "TabmlHighErrorRatio")
    # The rule's window (15 s of rate, then `for:` 15 s), scrape and group wait: well within.
    assert first - alerted["start"] < 60
    alert = next(a for _, a in webhook.alerts if a["labels"]["alertname"] == "TabmlHighErrorRatio")
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["runbook"] == "docs/alerts.md#tabmlhigherrorratio"


def test_slow_requests_fire_the_latency_alert(alerted):
    assert ("TabmlHighLatency", "slow") in alerted["webhook"].firing(), alerted["webhook"].alerts


def test_a_healthy_service_under_the_same_traffic_fires_nothing(alerted):
    # Each service answered traffic the whole time: no "no traffic" alert either.
    assert set(alerted["requests"]) == set(FAULTS)
    assert all(rate >= 0.1 for rate in alerted["requests"].values()), alerted["requests"]
    assert alerted["webhook"].firing() == EXPECTED, alerted["webhook"].alerts
    assert alerted["healthy"] == [], "nothing pending for the healthy service either"
