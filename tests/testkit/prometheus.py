"""A real Prometheus, Alertmanager and Pushgateway (Debian's packages) for a test, on 127.0.0.1.

Each runs from its own temporary directory with a config the test writes, on a free port, and
stops after. `query` and `alerts` read Prometheus's HTTP API
(https://prometheus.io/docs/prometheus/latest/querying/api/).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from testkit.server import HOST, Server, free_port, running

BINARIES = {
    "prometheus": "prometheus",
    "alertmanager": "prometheus-alertmanager",
    "pushgateway": "prometheus-pushgateway",
}


def missing() -> list[str]:
    """The binaries this machine lacks (`make system-packages` installs them)."""
    return [name for name in BINARIES.values() if shutil.which(name) is None]


@contextlib.contextmanager
def _serve(name: str, config: dict[str, Any] | None, *flags: str) -> Iterator[Server]:
    """Run BINARIES[name] from a fresh home (its config as `<name>.yml`, data under `data/`)
    on a free port with `flags` (`{home}` replaced by the home); remove the home after."""
    home = Path(tempfile.mkdtemp(prefix=f"tabml-{name}-"))
    port = free_port()
    cmd = [BINARIES[name], f"--web.listen-address={HOST}:{port}"]
    if config is not None:
        (home / f"{name}.yml").write_text(yaml.safe_dump(config))
        cmd.append(f"--config.file={home / f'{name}.yml'}")
    cmd += [flag.format(home=home) for flag in flags]
    try:
        with running(cmd, port, home / "log", ready_path="/-/ready", timeout=60) as server:
            yield server
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def prometheus(
    scrape: dict[str, list[str]],
    *,
    rules: list[Path] = (),
    alertmanager: str | None = None,
    interval: str = "1s",
    evaluation: str = "1s",
    labels: dict[str, dict[str, str]] | None = None,
) -> Iterator[Server]:
    """Prometheus scraping `scrape` (job -> ["host:port", ...]) every `interval`, evaluating
    `rules` every `evaluation` and sending alerts to `alertmanager` (its base URL)."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": evaluation},
        "scrape_configs": [
            {
                "job_name": job,
                "static_configs": [{"targets": targets, "labels": (labels or {}).get(job, {})}],
            }
            for job, targets in scrape.items()
        ],
    }
    if rules:
        config["rule_files"] = [str(Path(r).resolve()) for r in rules]
    if alertmanager:
        target = urllib.parse.urlsplit(alertmanager).netloc
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [target]}]}]}
    flags = ("--storage.tsdb.path={home}/data", "--web.enable-lifecycle")
    with _serve("prometheus", config, *flags) as server:
        yield server


@contextlib.contextmanager
def alertmanager(webhook: str, *, group_wait: str = "1s") -> Iterator[Server]:
    """Alertmanager sending every alert to `webhook` (a URL the test serves)."""
    config = {
        "route": {
            "receiver": "test",
            "group_by": ["alertname"],
            "group_wait": group_wait,
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "test", "webhook_configs": [{"url": webhook}]}],
    }
    # No peers: a lone instance that does not open its gossip port.
    flags = ("--storage.path={home}/data", "--cluster.listen-address=")
    with _serve("alertmanager", config, *flags) as server:
        yield server


@contextlib.contextmanager
def pushgateway() -> Iterator[Server]:
    with _serve("pushgateway", None) as server:
        yield server


def api(server: Server, path: str, **params: str) -> Any:
    """`data` of a Prometheus API answer; raises on an error status."""
    url = f"{server.url}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        payload = json.load(response)
    if payload.get("status") != "success":
        raise RuntimeError(f"{url}: {payload}")
    return payload["data"]


def query(server: Server, expr: str) -> list[dict[str, Any]]:
    """An instant query's result vector."""
    return api(server, "/api/v1/query", query=expr)["result"]


def wait_for_targets(server: Server, count: int, timeout: float = 30.0) -> None:
    """Until `count` scrape targets are up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(query(server, "up == 1")) >= count:
            return
        time.sleep(0.5)
    raise TimeoutError(f"fewer than {count} targets up: {api(server, '/api/v1/targets')}")
