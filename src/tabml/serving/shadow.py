"""Shadow scoring: a second model scores what the first one answered, off the request path.

A request only appends its columns to a bounded queue (counted in records, not requests); one
thread per worker process wakes on a timer, scores everything queued since in one call to the
shadow model and hands each request's share of the result on (to the prediction log), with the
seconds that call took. When `max_pending` records already wait, the new batch is refused at
once and the caller counts it as dropped: a slow or stuck shadow costs the answer nothing but a
lock and a length check.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

Columns = Mapping[str, Sequence[Any]]
# (what was queued, the shadow's probabilities or None when it failed, seconds it took)
Done = Callable[[Any, np.ndarray | None, float | None], None]


class ShadowQueue:
    """Score queued batches with `score` in a thread; `submit` never waits."""

    def __init__(
        self,
        score: Callable[[Columns], np.ndarray],
        done: Done,
        *,
        max_pending: int = 10_000,
        wait_seconds: float = 0.05,
    ) -> None:
        self.score, self.done = score, done
        self.max_pending, self.wait_seconds = max_pending, wait_seconds
        self._items: list[tuple[Columns, int, Any]] = []
        self._pending = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="shadow-scoring", daemon=True)
        self._thread.start()

    def submit(self, columns: Columns, rows: int, payload: Any) -> bool:
        """Queue `rows` records for the shadow; False (nothing queued) when the queue is full."""
        with self._lock:
            if self._stopping or self._pending + rows > self.max_pending:
                return False
            self._pending += rows
            self._items.append((columns, rows, payload))
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Score what is queued, then stop the thread."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        # A timer, not a wake-up per request: waking a thread costs the request path more than
        # queueing does, and the shadow's answer is wanted within seconds, not milliseconds.
        while not self._stopping:
            self._wake.wait(self.wait_seconds)
            self._drain()
        self._drain()

    def _drain(self) -> None:
        with self._lock:
            items, self._items = self._items, []
        if not items:
            return
        # One call for everything queued since the last wake-up: a call per request would hold
        # the interpreter lock about as long per record as the whole batch takes, and a request
        # arriving meanwhile waits for it.
        columns = items[0][0] if len(items) == 1 else merge([c for c, _, _ in items])
        rows = sum(n for _, n, _ in items)
        probabilities, seconds = None, None
        try:
            start = time.perf_counter()
            probabilities = self.score(columns)
            seconds = time.perf_counter() - start
        except Exception:  # a failing shadow must not stop the log or the service
            log.exception("shadow model could not score %d records", rows)
        offset = 0
        for _, n, payload in items:
            part = None if probabilities is None else probabilities[offset : offset + n]
            offset += n
            try:
                self.done(payload, part, seconds)
            except Exception:
                log.exception("shadow result of %d records lost", n)
        with self._lock:
            self._pending -= rows


def merge(batches: Sequence[Columns]) -> dict[str, list[Any]]:
    """The batches' columns end to end, in order."""
    return {name: list(chain.from_iterable(b[name] for b in batches)) for name in batches[0]}
