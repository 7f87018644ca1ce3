"""What a model owner watches: Prometheus metrics, and an ASGI guard that refuses bad requests.

Metrics (served with BentoML's own on `/metrics`):
- `tabml_predictions_total{decision}`: scored records by decision (`positive`, `negative`);
- `tabml_score`: histogram of predicted probabilities;
- `tabml_rejected_requests_total{endpoint, reason}`: refused requests by endpoint and reason
  (`malformed_json`, `missing_field`, `extra_field`, `wrong_type`, `not_finite`,
  `out_of_range`, `unknown_category`, `empty_batch`, `batch_too_large`, `body_too_large`,
  `missing_content_type`, `unsupported_media_type`, `invalid`);
- `tabml_prediction_log_dropped_total`: records the prediction log could not keep up with;
- `tabml_model_info{model_tag, runtime, mlflow_run_id, git_commit}`: always 1, says what runs;
- with a shadow model: `tabml_shadow_scored_total` and `tabml_shadow_dropped_total` (records
  the shadow scored, and dropped because its queue was full), `tabml_shadow_latency_seconds`
  (its scoring call per queued batch) and `tabml_shadow_model_info{model_tag}`.

A refused request is one WARNING line (endpoint, status, reason and the fields named, never a
value) and a count; BentoML's own ERROR line with a traceback stays for server errors only, so
a flood of bad requests neither fills the disk nor copies client data into the log.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import numpy as np

from tabml.serving.contract import describe, reason

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SCORE_BUCKETS = tuple(round(b, 2) for b in np.linspace(0.05, 1.0, 20))
# Scoring a batch takes from a tenth of a millisecond (one record, ONNX) to about a second.
LATENCY_BUCKETS = (1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# A field name goes into the log only if it looks like one: a client picks the names of the
# fields it sends, and a "name" may be a value, a secret or a line break in disguise.
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
FIELDS_LOGGED = 5
BENTOML_ERRORS = "bentoml._internal.server.http_app"  # logs every refused request with a traceback


@functools.cache
def metrics() -> dict[str, Any]:
    """The metrics, created once per process (after BentoML sets up multiprocess mode)."""
    import prometheus_client as prom

    return {
        "predictions": prom.Counter(
            "tabml_predictions", "Scored records by decision", ["decision"]
        ),
        "score": prom.Histogram(
            "tabml_score", "Predicted probability of the positive label", buckets=SCORE_BUCKETS
        ),
        "rejected": prom.Counter(
            "tabml_rejected_requests",
            "Refused requests by endpoint and reason",
            ["endpoint", "reason"],
        ),
        "dropped": prom.Counter(
            "tabml_prediction_log_dropped", "Records the prediction log dropped"
        ),
        "info": prom.Gauge(
            "tabml_model_info",
            "The model this service runs (always 1)",
            ["model_tag", "runtime", "mlflow_run_id", "git_commit"],
            multiprocess_mode="max",
        ),
        "shadow_scored": prom.Counter("tabml_shadow_scored", "Records the shadow model scored"),
        "shadow_dropped": prom.Counter(
            "tabml_shadow_dropped", "Records the shadow model dropped: its queue was full"
        ),
        "shadow_latency": prom.Histogram(
            "tabml_shadow_latency_seconds",
            "The shadow model's scoring call, per queued batch",
            buckets=LATENCY_BUCKETS,
        ),
        "shadow_info": prom.Gauge(
            "tabml_shadow_model_info",
            "The shadow model this service runs beside its model (always 1)",
            ["model_tag"],
            multiprocess_mode="max",
        ),
    }


def observe(probabilities: np.ndarray, decisions: np.ndarray) -> None:
    """Count a scored batch: decisions, and the score histogram in one pass."""
    m = metrics()
    positive = int(decisions.sum())
    if positive:
        m["predictions"].labels("positive").inc(positive)
    if len(decisions) - positive:
        m["predictions"].labels("negative").inc(len(decisions) - positive)
    histogram = m["score"]
    if len(probabilities) == 1 or not hasattr(histogram, "_buckets"):
        for p in probabilities.tolist():
            histogram.observe(p)
        return
    # One increment per bucket instead of one observe per record: a batch of 10,000 records
    # would otherwise spend more time in the histogram than in the model.
    bounds = np.array([*SCORE_BUCKETS, np.inf])
    counts = np.bincount(np.searchsorted(bounds, probabilities), minlength=len(bounds))
    for bucket, count in zip(histogram._buckets, counts.tolist(), strict=False):
        if count:
            bucket.inc(count)
    histogram._sum.inc(float(probabilities.sum()))


def field_name(loc: Iterable[Any]) -> str:
    """`client.age`, `records.3.age`; a part that does not look like a name becomes `?`."""
    parts = [str(p) if isinstance(p, int) or NAME.fullmatch(str(p)) else "?" for p in loc]
    return ".".join(parts)


def refused(endpoint: str, status: int, reasons: dict[str, list[str]]) -> None:
    """Count a refused request by reason and log it as one line: reasons and fields, no value."""
    parts = []
    for label, fields in sorted(reasons.items()):
        metrics()["rejected"].labels(endpoint, label).inc()
        shown = ", ".join(f"'{f}'" for f in fields[:FIELDS_LOGGED])
        more = f" and {len(fields) - FIELDS_LOGGED} more" if len(fields) > FIELDS_LOGGED else ""
        parts.append(f"{label}: field {shown}{more}" if fields else label)
    log.warning("refused %s (%d): %s", endpoint, status, "; ".join(parts))


class ClientErrorFilter(logging.Filter):
    """Drops BentoML's ERROR-with-traceback record of a request it refused (4xx).

    The guard logs that request as one line instead; a server error keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from bentoml.exceptions import BentoMLException
        from pydantic import ValidationError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):  # BentoML answers 400 to any ValidationError
            return False
        return not (isinstance(exc, BentoMLException) and exc.error_code < 500)


def quiet_refusals() -> None:
    """Install `ClientErrorFilter` on BentoML's request-error logger (once per process)."""
    logger = logging.getLogger(BENTOML_ERRORS)
    if not any(isinstance(f, ClientErrorFilter) for f in logger.filters):
        logger.addFilter(ClientErrorFilter())


class RequestGuard:
    """ASGI middleware on the API routes: accepts JSON only, caps the body size, rewrites 4xx
    bodies into one readable message naming each field and problem, counts refusals by reason."""

    def __init__(
        self, app: Callable[..., Awaitable[None]], paths: tuple[str, ...], max_bytes: int
    ):
        self.app, self.paths, self.max_bytes = app, paths, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        endpoint = scope["path"]
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        has_body = length not in (None, b"0") or b"transfer-encoding" in headers
        if has_body and b"content-type" not in headers:
            message = "the Content-Type header is missing: send application/json"
            return await self._refuse(send, endpoint, 415, "missing_content_type", message)
        media = headers.get(b"content-type", b"application/json").split(b";")[0].strip().lower()
        if media != b"application/json":
            shown = media.decode("latin-1")[:40] or "empty"
            message = f"Content-Type must be application/json, not {shown}"
            return await self._refuse(send, endpoint, 415, "unsupported_media_type", message)
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._too_large(send, endpoint, int(length))
        if length is None:  # chunked: read it here, so the cap holds without a length
            body, size = [], 0
            while True:
                message = await receive()
                body.append(message.get("body", b""))
                size += len(body[-1])
                if size > self.max_bytes:
                    return await self._too_large(send, endpoint, size)
                if not message.get("more_body", False):
                    break
            receive = _replay(b"".join(body))
        await self.app(scope, receive, _Rewriter(send, endpoint))

    async def _too_large(self, send: Send, endpoint: str, size: int) -> None:
        message = f"request body is {size} bytes or more; the limit is {self.max_bytes} bytes"
        await self._refuse(send, endpoint, 413, "body_too_large", message)

    async def _refuse(
        self, send: Send, endpoint: str, status: int, label: str, message: str
    ) -> None:
        refused(endpoint, status, {label: []})
        await _send_json(send, status, {"error": message})


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class _Rewriter:
    """Passes 2xx/5xx through; buffers a 4xx body and sends it back rewritten."""

    def __init__(self, send: Send, endpoint: str = "") -> None:
        self.send, self.endpoint, self.start, self.chunks = send, endpoint, None, []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
            self.start = message
            return
        if self.start is None:
            return await self.send(message)
        self.chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            status, payload = rewrite(self.start["status"], b"".join(self.chunks), self.endpoint)
            await _send_json(self.send, status, payload, self.start.get("headers", []))


def rewrite(status: int, body: bytes, endpoint: str = "") -> tuple[int, dict[str, Any]]:
    """BentoML's 4xx body, with `error` made readable; counts and logs the refusal by reason."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = {"error": body.decode("utf-8", "replace")}
    if isinstance(payload, list) and payload and isinstance(payload[0], dict):
        payload = payload[0]  # BentoML wraps some 4xx errors in a one-element list
    if not isinstance(payload, dict):
        payload = {"error": str(payload)}
    detail = payload.get("detail")
    reasons: dict[str, list[str]] = {}
    if isinstance(detail, list) and detail:
        payload["error"] = describe(detail)
        for error in (e for e in detail if isinstance(e, dict)):
            fields = reasons.setdefault(reason(str(error.get("type", ""))), [])
            name = field_name(error.get("loc", ()))
            if name and name not in fields:
                fields.append(name)
    else:
        reasons = {"invalid": []}
    refused(endpoint, status, reasons)
    return status, payload


async def _send_json(
    send: Send, status: int, payload: dict[str, Any], headers: list | None = None
) -> None:
    body = json.dumps(payload).encode()
    kept = [
        (k, v) for k, v in headers or [] if k.lower() not in (b"content-length", b"content-type")
    ]
    kept += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": kept})
    await send({"type": "http.response.body", "body": body})
