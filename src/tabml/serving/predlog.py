"""The prediction log: every scored record, for the drift monitor, written off the request path.

Format (read it with `read_log`, or `pandas.read_json(path, lines=True)` per file):

- a directory of JSON-lines files `predictions-<UTC start>-<pid>-<n>.jsonl`, one object per
  scored record: `time` (ISO 8601, UTC), `model_version` (exact model tag), `probability`,
  `decision`, then one key per model feature, as sent;
- a file is written as `<name>.jsonl.part` and renamed to `<name>.jsonl` once closed (at
  `rotate_bytes`, after `rotate_seconds`, or at shutdown): readers take `*.jsonl` only and never
  see a half-written line; sorting names sorts by time.

Requests only append their columns to a buffer; one thread per worker formats and writes the
buffer every `flush_seconds`. If the writer falls `max_pending` records behind, new records are
dropped (and counted), so a slow disk can never slow or stop scoring.
"""

from __future__ import annotations

import io
import json
import logging
import os
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


class PredictionLog:
    """Append scored records to rotated JSON-lines files in `directory`, from a thread."""

    def __init__(
        self,
        directory: str | Path,
        features: Sequence[str],
        *,
        rotate_bytes: int = 64 << 20,
        rotate_seconds: float = 3600.0,
        flush_seconds: float = 0.5,
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
        self.flush_seconds, self.max_pending, self.on_drop = flush_seconds, max_pending, on_drop
        self._buffer: list[tuple[Any, ...]] = []
        self._pending = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
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
        stamp = datetime.now(UTC).isoformat(timespec="microseconds")
        with self._lock:
            if self._pending + n <= self.max_pending:
                self._pending += n
                self._buffer.append((stamp, columns, probabilities, decisions, model_version))
                return
        if self.on_drop:
            self.on_drop(n)

    def close(self) -> None:
        """Write what is queued, close the current file and stop the thread."""
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        # The writer wakes on a timer, not per request: waking a thread for every request
        # costs the request path more than formatting the records does.
        while not self._stop.wait(self.flush_seconds):
            self._flush()
        self._flush()
        self._close_file()

    def _flush(self) -> None:
        with self._lock:
            batch, self._buffer = self._buffer, []
        rows = sum(len(item[2]) for item in batch)
        try:
            self._write(batch)
        except Exception:  # a logging failure must not kill the writer
            log.exception("prediction log: could not write %d records", rows)
        finally:
            with self._lock:
                self._pending -= rows

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        self._rotate_if_due()
        lines = [line for item in batch for line in self._format(*item)]
        if not lines:
            return
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


def read_log(directory: str | Path, include_open: bool = False) -> pd.DataFrame:
    """The closed prediction log files in `directory` (and the open ones, up to their last
    complete line, if `include_open`), in time order, as one frame."""
    files = sorted(Path(directory).glob(f"*{SUFFIX}"))
    if include_open:
        files = sorted([*files, *Path(directory).glob(f"*{SUFFIX}{PART}")])
    texts = [f.read_text(encoding="utf-8") for f in files]
    text = "".join(t[: t.rfind("\n") + 1] for t in texts)
    if not text:
        return pd.DataFrame(columns=list(RESERVED))
    frame = pd.read_json(io.StringIO(text), lines=True, precise_float=True)
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    return frame
