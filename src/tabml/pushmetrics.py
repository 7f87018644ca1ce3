"""Prometheus metrics of the batch steps: the monitor's drift figures and the registry's aliases.

A step that runs and exits cannot be scraped, so it hands its figures over: to a Pushgateway
(`--pushgateway URL`, scraped with `honor_labels: true`) or to a file for node-exporter's
textfile collector (`--metrics-file PATH.prom`, written atomically). The alert rules in
deploy/prometheus/rules.yml compare them with their limits, which are pushed beside them so that
each limit keeps its one home in params.yaml. docs/alerts.md lists what reads them.
"""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from tabml.io import DataError

MONITOR_JOB = "tabml_monitor"
REGISTRY_JOB = "tabml_registry"
PUSH_TIMEOUT = 10.0


def monitor_metrics(result: Mapping[str, Any], model_tag: str, now: float | None = None) -> Any:
    """The monitor's verdict on a window as gauges: PSI of the score and of each feature, their
    limits, the verdict, the rows judged and when."""
    registry = CollectorRegistry()
    limits = result["limits"]

    def gauge(name: str, doc: str, value: float) -> None:
        Gauge(name, doc, registry=registry).set(value)

    gauge("tabml_drift_score_psi", "PSI of the predicted probability", result["score"]["psi"])
    gauge("tabml_drift_score_psi_limit", "drift.max_score_psi", limits["max_score_psi"])
    feature = Gauge("tabml_drift_feature_psi", "PSI of a feature", ["feature"], registry=registry)
    for row in result["features"]:
        feature.labels(row["feature"]).set(row["psi"])
    gauge("tabml_drift_feature_psi_limit", "drift.max_feature_psi", limits["max_feature_psi"])
    gauge("tabml_monitor_drift", "1 if the monitor found drift", float(result["drift"]))
    gauge("tabml_monitor_rows", "Records the monitor judged", result["rows"])
    gauge("tabml_monitor_last_run_timestamp_seconds", "When the monitor ran", now or time.time())
    Gauge("tabml_monitor_info", "The model monitored (always 1)", ["model_tag"],
          registry=registry).labels(model_tag).set(1)  # fmt: skip
    return registry


def alias_metrics(alias: str, model_tag: str, version: str) -> Any:
    """`tabml_registry_alias_info{alias, model_tag, version} 1`: what the alias points at."""
    registry = CollectorRegistry()
    Gauge(
        "tabml_registry_alias_info",
        "The model a registry alias points at (always 1)",
        ["alias", "model_tag", "version"],
        registry=registry,
    ).labels(alias, model_tag, version).set(1)
    return registry


def publish(
    registry: Any,
    job: str,
    *,
    pushgateway: str | None = None,
    metrics_file: str | None = None,
    grouping: Mapping[str, str] | None = None,
) -> list[str]:
    """Push `registry` (replacing the job's group) and/or write it as a textfile; where it went.

    A Pushgateway that does not answer is a `DataError` naming the URL and what to change.
    """
    done = []
    if pushgateway:
        try:
            push_to_gateway(
                pushgateway, job=job, registry=registry, grouping_key=dict(grouping or {}),
                timeout=PUSH_TIMEOUT,
            )  # fmt: skip
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DataError(
                f"the Pushgateway at {pushgateway} did not take the metrics ({reason}); start it, "
                "or give PUSHGATEWAY= its URL (empty: push nothing)."
            ) from None
        done.append(f"pushed to {pushgateway} (job {job})")
    if metrics_file:
        path = Path(metrics_file)
        if path.suffix != ".prom":
            raise DataError(
                f"METRICS_FILE={metrics_file}: node-exporter's textfile collector reads *.prom "
                "files only; name it <something>.prom."
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), registry)  # a temporary file renamed into place
        done.append(f"written to {path}")
    return done
