"""Injected faults, for drills: errors and delays that alerts and canary analysis must catch.

Set `TABML_FAULTS` where the service runs, e.g. `error_ratio=0.3,delay_ms=400`:
- `error_ratio`: the share of scoring requests answered 503 instead of scored;
- `delay_ms`: added before each scoring request is handled;
- `after`: the first `after` scoring requests of each worker process are served untouched, so a
  release can pass its smoke test (22 scoring requests) and fail under the traffic that follows,
  as a release that degrades with load does; the canary analysis drill relies on it.
Unset (the default), nothing is installed. With it set, the service logs one WARNING at start,
and each injected error is counted by BentoML's own request metrics like any server error, so
a drill exercises exactly what a real outage would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

ENV = "TABML_FAULTS"


@dataclass(frozen=True)
class Faults:
    error_ratio: float = 0.0
    delay_ms: float = 0.0
    after: float = 0.0


def parse(text: str) -> Faults:
    """`error_ratio=0.3,delay_ms=400` as `Faults`; a bad part raises ValueError naming it."""
    values: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, raw = part.partition("=")
        key = key.strip()
        if key not in Faults.__dataclass_fields__:
            raise ValueError(f"{ENV}: unknown fault '{key}'; use error_ratio, delay_ms and after")
        try:
            values[key] = float(raw)
        except ValueError:
            raise ValueError(f"{ENV}: {key}={raw!r} is not a number") from None
    faults = Faults(**values)
    if not 0.0 <= faults.error_ratio <= 1.0:
        raise ValueError(f"{ENV}: error_ratio={faults.error_ratio} must be within 0 and 1")
    for key in ("delay_ms", "after"):
        if getattr(faults, key) < 0:
            raise ValueError(f"{ENV}: {key}={getattr(faults, key)} must be 0 or more")
    return faults


def from_env(environ: Mapping[str, str]) -> Faults | None:
    text = environ.get(ENV, "").strip()
    return parse(text) if text else None


class FaultInjector:
    """ASGI middleware on the scoring routes: after `after` requests, delays, then fails a share
    of requests with 503."""

    def __init__(self, app, paths: tuple[str, ...], faults: Faults, seed: int | None = None):
        self.app, self.paths, self.faults = app, paths, faults
        self.random = random.Random(seed)
        self.spared = int(faults.after)  # requests still to serve untouched
        log.warning("%s is set: injecting %s into %s", ENV, faults, ", ".join(paths))

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        if self.spared > 0:
            self.spared -= 1
            return await self.app(scope, receive, send)
        if self.faults.delay_ms:
            await asyncio.sleep(self.faults.delay_ms / 1000)
        if self.random.random() < self.faults.error_ratio:
            body = json.dumps({"error": f"injected fault ({ENV})"}).encode()
            headers = [(b"content-type", b"application/json"),
                       (b"content-length", str(len(body)).encode())]  # fmt: skip
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            return await send({"type": "http.response.body", "body": body})
        await self.app(scope, receive, send)
