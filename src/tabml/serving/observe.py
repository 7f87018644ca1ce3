"""What a model owner watches: Prometheus metrics, and an ASGI guard that refuses bad requests.

Metrics (served with BentoML's own on `/metrics`):
- `tabml_predictions_total{decision}`: scored records by decision (`positive`, `negative`);
- `tabml_score`: histogram of predicted probabilities;
- `tabml_rejected_requests_total{reason}`: refused requests by reason (`malformed_json`,
  `missing_field`, `extra_field`, `wrong_type`, `not_finite`, `out_of_range`,
  `unknown_category`, `empty_batch`, `batch_too_large`, `body_too_large`,
  `unsupported_media_type`, `invalid`);
- `tabml_prediction_log_dropped_total`: records the prediction log could not keep up with;
- `tabml_model_info{model_tag, runtime, mlflow_run_id, git_commit}`: always 1, says what runs.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np

from tabml.serving.contract import describe, reason

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SCORE_BUCKETS = tuple(round(b, 2) for b in np.linspace(0.05, 1.0, 20))


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
            "tabml_rejected_requests", "Refused requests by reason", ["reason"]
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
        headers = dict(scope["headers"])
        media = headers.get(b"content-type", b"application/json").split(b";")[0].strip().lower()
        if media != b"application/json":
            return await self._refuse(
                send,
                415,
                "unsupported_media_type",
                f"Content-Type must be application/json, not {media.decode('latin-1') or 'empty'}",
            )
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._too_large(send, int(length))
        if length is None:  # chunked: read it here, so the cap holds without a length
            body, size = [], 0
            while True:
                message = await receive()
                body.append(message.get("body", b""))
                size += len(body[-1])
                if size > self.max_bytes:
                    return await self._too_large(send, size)
                if not message.get("more_body", False):
                    break
            receive = _replay(b"".join(body))
        await self.app(scope, receive, _Rewriter(send))

    async def _too_large(self, send: Send, size: int) -> None:
        message = f"request body is {size} bytes or more; the limit is {self.max_bytes} bytes"
        await self._refuse(send, 413, "body_too_large", message)

    async def _refuse(self, send: Send, status: int, label: str, message: str) -> None:
        metrics()["rejected"].labels(label).inc()
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

    def __init__(self, send: Send) -> None:
        self.send, self.start, self.chunks = send, None, []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
            self.start = message
            return
        if self.start is None:
            return await self.send(message)
        self.chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            status, payload = rewrite(self.start["status"], b"".join(self.chunks))
            await _send_json(self.send, status, payload, self.start.get("headers", []))


def rewrite(status: int, body: bytes) -> tuple[int, dict[str, Any]]:
    """BentoML's 4xx body, with `error` made readable; counts the refusal by reason."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = {"error": body.decode("utf-8", "replace")}
    if isinstance(payload, list) and payload and isinstance(payload[0], dict):
        payload = payload[0]  # BentoML wraps some 4xx errors in a one-element list
    if not isinstance(payload, dict):
        payload = {"error": str(payload)}
    detail = payload.get("detail")
    if isinstance(detail, list) and detail:
        payload["error"] = describe(detail)
        reasons = {reason(str(e.get("type", ""))) for e in detail if isinstance(e, dict)}
    else:
        reasons = {"invalid"}
    for label in reasons:
        metrics()["rejected"].labels(label).inc()
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
