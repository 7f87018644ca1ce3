"""Canary analysis: the canary's traffic, error ratio and p99 latency against the stable's.

Both deploy targets ask one Prometheus the queries of `QUERIES`, the one home of their text:
the local target selects each track by the `env` and `track` labels of its scrape config
(deploy/prometheus/local.yml), the Kubernetes target by namespace and the pods' `track` label,
and deploy/k8s/overlays/production/canary-analysis.yaml records the same text (a test compares
them). `judge` decides from the values alone; `analyse` queries and judges.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from string import Template
from typing import Any

from tabml.commands import CommandError
from tabml.params import DeployParams

TRACKS = ("canary", "stable")
# BentoML's own request metrics, on the scoring routes only (not /metrics, /identity, probes).
SCORING = 'bentoml_service_request_total{$selector,endpoint=~"/score|/score_batch"}'
ERRORS = SCORING.replace("}", ',http_response_code=~"5.."}')
BUCKETS = (
    'bentoml_service_request_duration_seconds_bucket{$selector,endpoint=~"/score|/score_batch"}'
)
QUERIES = {
    "requests": f"sum(increase({SCORING}[$window]))",
    # `or ... * 0`: a release without a single 5xx has no 5xx series; its ratio is 0, not empty.
    "error_ratio": f"sum(rate({ERRORS}[$window]) or rate({SCORING}[$window]) * 0)"
    f" / sum(rate({SCORING}[$window]))",
    "p99_seconds": f"histogram_quantile(0.99, sum by (le) (rate({BUCKETS}[$window])))",
}
SCRAPED = "min(timestamp(up{$selector}))"
SCRAPE_WAIT_SECONDS = 60.0
EPSILON = 1e-9  # a limit reached exactly passes, whatever float sums make of it


def render(name: str, selector: str, window: str) -> str:
    """Query `name` for the series `selector` picks (`a="x",b="y"`) over `window` (`300s`)."""
    return Template(QUERIES[name]).substitute(selector=selector, window=window)


def selector(**labels: str) -> str:
    return ",".join(f'{key}="{value}"' for key, value in labels.items())


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    canary: float
    stable: float
    limit: float
    rule: str

    def line(self) -> str:
        return (
            f"{self.name}: canary {self.canary:.4g}, stable {self.stable:.4g}, "
            f"limit {self.limit:.4g} ({self.rule})"
        )


def judge(values: dict[str, dict[str, float]], cfg: DeployParams) -> list[Check]:
    """Each check of the analysis on the queried values (NaN: no data, which fails)."""
    can, stab = values["canary"], values["stable"]
    fewest = min(can["requests"], stab["requests"])
    error_limit = stab["error_ratio"] + cfg.canary_max_error_ratio
    can_ms, stab_ms = can["p99_seconds"] * 1000, stab["p99_seconds"] * 1000
    latency_limit = cfg.canary_max_latency_ratio * stab_ms + cfg.canary_latency_slack_ms
    checks = [
        Check("requests", fewest >= cfg.canary_min_requests, can["requests"], stab["requests"],
              cfg.canary_min_requests, "each track serves at least this"),
        Check("error_ratio", can["error_ratio"] <= error_limit + EPSILON, can["error_ratio"],
              stab["error_ratio"], error_limit,
              f"stable + canary_max_error_ratio {cfg.canary_max_error_ratio:g}"),
        Check("p99_ms", can_ms <= latency_limit + EPSILON, can_ms, stab_ms, latency_limit,
              f"stable x {cfg.canary_max_latency_ratio:g} + {cfg.canary_latency_slack_ms:g} ms"),
    ]  # fmt: skip
    # A comparison with NaN is False, so no data fails every check but `requests` on its own.
    return [Check(**{**asdict(c), "passed": False}) if math.isnan(c.canary + c.stable) else c
            for c in checks]  # fmt: skip


def query(url: str, expr: str, at: float) -> float:
    """An instant query's one value at `at` (NaN when the vector is empty)."""
    args = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
    try:
        with urllib.request.urlopen(f"{url}/api/v1/query?{args}", timeout=10) as answer:
            payload = json.load(answer)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise CommandError(f"Prometheus at {url} did not answer `{expr}`: {exc}") from None
    result = payload.get("data", {}).get("result", [])
    if payload.get("status") != "success" or len(result) > 1:
        raise CommandError(f"Prometheus at {url}: `{expr}` gave {str(payload)[:300]}")
    return float(result[0]["value"][1]) if result else math.nan


def wait_scraped(url: str, selectors: dict[str, str], after: float) -> float:
    """The time by which Prometheus has scraped every track after `after`."""
    deadline = time.monotonic() + SCRAPE_WAIT_SECONDS
    while True:
        now = time.time()
        scraped = [query(url, Template(SCRAPED).substitute(selector=s), now)
                   for s in selectors.values()]  # fmt: skip
        if all(t >= after for t in scraped):  # NaN (never scraped) is never >= after
            return now
        if time.monotonic() > deadline:
            pairs = zip(selectors.values(), scraped, strict=True)
            missing = [f"{{{s}}}" for s, t in pairs if not t >= after]
            raise CommandError(
                f"Prometheus at {url} has not scraped {', '.join(missing)} since the canary "
                "traffic ended; is the candidate's port among its targets?"
            )
        time.sleep(1)


def analyse(url: str, selectors: dict[str, str], seconds: float, cfg: DeployParams) -> dict:
    """Query each track over the last `seconds` and judge: the deploy record's `analysis`."""
    at = wait_scraped(url, selectors, time.time())
    window = f"{max(1, round(seconds))}s"
    queries = {name: {track: render(name, selectors[track], window) for track in TRACKS}
               for name in QUERIES}  # fmt: skip
    values = {track: {name: query(url, queries[name][track], at) for name in QUERIES}
              for track in TRACKS}  # fmt: skip
    checks = judge(values, cfg)
    failed = [c for c in checks if not c.passed]
    return {
        "prometheus_url": url,
        "at": at,
        "window": window,
        "queries": queries,
        "values": {t: {n: finite(v) for n, v in got.items()} for t, got in values.items()},
        "checks": [{k: finite(v) for k, v in asdict(c).items()} for c in checks],
        "verdict": "roll back" if failed else "promote",
        "failed": "; ".join(c.line() for c in failed),
    }


def finite(value: Any) -> Any:
    """NaN (no data) as None, which JSON can hold."""
    return None if isinstance(value, float) and math.isnan(value) else value


def summary(analysis: dict[str, Any]) -> str:
    """One line per check, for the deploy's output."""
    lines = [f"canary analysis over {analysis['window']} ({analysis['prometheus_url']}):"]
    for c in analysis["checks"]:
        shown = Check(**{k: math.nan if v is None else v for k, v in c.items()})
        lines.append(f"  {'pass' if c['passed'] else 'FAIL'}  {shown.line()}")
    return "\n".join([*lines, f"  verdict: {analysis['verdict']}"])
