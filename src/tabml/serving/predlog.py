"""The prediction log: every scored record, for the drift monitor, written off the request path.

Format (read it with `read_log`, or `pandas.read_json(path, lines=True)` per file):

- a directory of JSON-lines files `predictions-<UTC start>-<pid>-<n>.jsonl`, one object per
  scored record: `time` (ISO 8601, UTC), `model_version` (exact model tag), `probability`,
  `decision`, then one key per model feature, as sent;
- a file is written as `<name>.jsonl.part` and renamed to `<name>.jsonl` once closed (at
  `rotate_bytes`, after `rotate_seconds`, or at shutdown): readers take `*.jsonl` only and never
  see a half-written line; sorting names sorts by time.

Requests only hand their columns to a queue; one thread per worker formats and writes them. If
the writer falls `max_pending` records behind, new records are dropped (and counted), so a slow
disk can never slow or stop scoring.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

RESERVED = ("time", "model_version", "probability", "decision")
SUFFIX = ".jsonl"
PART = ".part"
_STOP = object()
DRAIN = 1000  # queued requests written per file write


class PredictionLog:
    """Append scored records to rotated JSON-lines files in `directory`, from a thread."""

    def __init__(
        self,
        directory: str | Path,
        features: Sequence[str],
        *,
        rotate_bytes: int = 64 << 20,
        rotate_seconds: float = 3600.0,
        max_pending: int = 200_000,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        clash = sorted(set(features) & set(RESERVED))
        if clash:
            raise ValueError(f"features {clash} clash with prediction log keys {RESERVED}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.features = list(features)
        self.rotate_bytes, self.rotate_seconds = rotate_bytes, rotate_seconds
        self.max_pending, self.on_drop = max_pending, on_drop
        self._pending = 0
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._file: IO[str] | None = None
        self._path: Path | None = None
        self._opened = 0.0
        self._count = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def write(
        self,
        columns: Mapping[str, Sequence[Any]],
        probabilities: np.ndarray,
        decisions: np.ndarray,
        model_version: str,
    ) -> None:
        """Queue a scored batch (never blocks; drops the batch if the writer is too far behind)."""
        n = len(probabilities)
        with self._lock:
            if self._pending + n > self.max_pending:
                if self.on_drop:
                    self.on_drop(n)
                return
            self._pending += n
        stamp = datetime.now(UTC).isoformat(timespec="microseconds")
        self._queue.put((stamp, columns, probabilities, decisions, model_version))

    def close(self) -> None:
        """Write what is queued, close the current file and stop the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=min(self.rotate_seconds, 1.0))
            except queue.Empty:
                self._rotate_if_due()
                continue
            batch = [item]
            while item is not _STOP and len(batch) < DRAIN:  # one write for what is queued
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
            stop = batch[-1] is _STOP
            batch = [b for b in batch if b is not _STOP]
            rows = sum(len(b[2]) for b in batch)
            try:
                self._write(batch)
            except Exception:  # a logging failure must not kill the writer
                log.exception("prediction log: could not write %d records", rows)
            finally:
                with self._lock:
                    self._pending -= rows
            if stop:
                self._close_file()
                return

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        lines = [line for item in batch for line in self._format(*item)]
        if not lines:
            return
        self._rotate_if_due()
        if self._file is None:
            self._open_file()
        assert self._file is not None
        self._file.write("".join(lines))
        self._file.flush()
        self._rotate_if_due()

    def _format(
        self,
        stamp: str,
        columns: Mapping[str, Sequence[Any]],
        probabilities: np.ndarray,
        decisions: np.ndarray,
        model_version: str,
    ) -> list[str]:
        head = f'{{"time": "{stamp}", "model_version": {json.dumps(model_version)}, '
        keys = [json.dumps(c) for c in self.features]
        rows = zip(
            probabilities.tolist(),
            decisions.tolist(),
            *(columns[c] for c in self.features),
            strict=True,
        )
        lines = []
        for probability, decision, *values in rows:
            body = ", ".join(f"{k}: {json.dumps(v)}" for k, v in zip(keys, values, strict=True))
            lines.append(
                f'{head}"probability": {probability!r}, '
                f'"decision": {"true" if decision else "false"}, {body}}}\n'
            )
        return lines

    def _open_file(self) -> None:
        start = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self._count += 1
        name = f"predictions-{start}-{os.getpid()}-{self._count}{SUFFIX}{PART}"
        self._path = self.directory / name
        self._file = self._path.open("a", encoding="utf-8")
        self._opened = time.monotonic()

    def _rotate_if_due(self) -> None:
        if self._file is None:
            return
        too_big = self._file.tell() >= self.rotate_bytes
        too_old = time.monotonic() - self._opened >= self.rotate_seconds
        if too_big or too_old:
            self._close_file()

    def _close_file(self) -> None:
        if self._file is None or self._path is None:
            return
        self._file.close()
        self._path.rename(self._path.with_name(self._path.name.removesuffix(PART)))
        self._file = self._path = None


def read_log(directory: str | Path) -> pd.DataFrame:
    """Every closed prediction log file in `directory`, in time order, as one frame."""
    files = sorted(Path(directory).glob(f"*{SUFFIX}"))
    if not files:
        return pd.DataFrame(columns=list(RESERVED))
    frame = pd.concat([pd.read_json(f, lines=True) for f in files], ignore_index=True)
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    return frame
