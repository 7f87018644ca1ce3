"""The prediction log: every scored record, for the drift monitor, written off the request path.

Format (read it with `read_log`, or `pandas.read_parquet` per file):

- a directory of Parquet files `predictions-<UTC start>-<pid>-<n>.parquet`, one row per scored
  record: `time` (timestamp, UTC), `model_version` (exact model tag), `probability`, `decision`,
  `latency_ms` (the model's scoring call for the record's request), the shadow model's
  `shadow_model_version`, `shadow_probability`, `shadow_decision` and `shadow_latency_ms`
  (null without a shadow; a shadow tag with a null probability is a record the shadow
  dropped), then one column per model feature, as sent (the types of the training data).
  Logs written before the latency and shadow columns existed lack them;
- a file is written as `<name>.parquet.part` and renamed to `<name>.parquet` once closed (at
  `rotate_bytes`, after `rotate_seconds`, or at shutdown): readers take `*.parquet` only and
  never see a half-written file; sorting names sorts by time.

Requests only append their columns to a buffer; one thread per worker process converts the
buffer with pyarrow (no Python loop per value) and appends it to the open file as a row group,
every `flush_seconds` or as soon as `flush_rows` records wait. If the writer falls `max_pending`
records behind, new records are dropped and counted, so a slow disk never slows scoring.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

RESERVED = (
    "time", "model_version", "probability", "decision", "latency_ms",
    "shadow_model_version", "shadow_probability", "shadow_decision", "shadow_latency_ms",
)  # fmt: skip
# The shadow's part of a record: its model tag, probabilities, decisions and seconds, or the tag
# alone (then None, None, None) when the shadow dropped the record.
Shadow = tuple[str, np.ndarray | None, np.ndarray | None, float | None]
SUFFIX = ".parquet"
PART = ".part"


class PredictionLog:
    """Append scored records to rotated Parquet files in `directory`, from a thread."""

    def __init__(
        self,
        directory: str | Path,
        features: Sequence[str],
        *,
        rotate_bytes: int = 64 << 20,
        rotate_seconds: float = 3600.0,
        flush_seconds: float = 5.0,
        flush_rows: int = 50_000,
        max_pending: int = 500_000,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        clash = sorted(set(features) & set(RESERVED))
        if clash:
            raise ValueError(f"features {clash} clash with prediction log keys {RESERVED}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.features = list(features)
        self.rotate_bytes, self.rotate_seconds = rotate_bytes, rotate_seconds
        self.flush_seconds, self.flush_rows = min(flush_seconds, rotate_seconds), flush_rows
        self.max_pending, self.on_drop = max_pending, on_drop
        self._buffer: list[tuple[Any, ...]] = []
        self._pending = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._writer: Any = None
        self._schema: Any = None
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
        *,
        seconds: float | None = None,
        shadow: Shadow | None = None,
        stamp: int | None = None,
    ) -> None:
        """Queue a scored batch (never blocks; drops the batch if the writer is too far behind).

        Args:
            seconds: how long the model took to score the batch.
            shadow: the shadow model's result for the same records.
            stamp: when the batch was scored (microseconds since the epoch); default now.
        """
        n = len(probabilities)
        stamp = time.time_ns() // 1000 if stamp is None else stamp
        item = (stamp, columns, probabilities, decisions, model_version, seconds, shadow)
        with self._lock:
            accepted = self._pending + n <= self.max_pending
            if accepted:
                self._pending += n
                self._buffer.append(item)
                full = self._pending >= self.flush_rows
        if not accepted:
            if self.on_drop:
                self.on_drop(n)
        elif full:
            self._wake.set()

    def close(self) -> None:
        """Write what is queued, close the current file and stop the thread."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        # The writer wakes on a timer or a full buffer, not per request: waking a thread for
        # every request costs the request path more than converting the records does.
        while not self._stopping:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self._flush()
        self._flush()
        self._close_file()

    def _flush(self) -> None:
        with self._lock:
            batch, self._buffer = self._buffer, []
        rows = sum(len(item[2]) for item in batch)
        try:
            self._rotate_if_due()
            if batch:
                self._append(self._table(batch))
                self._rotate_if_due()
        except Exception:  # a logging failure must not kill the writer
            log.exception("prediction log: could not write %d records", rows)
        finally:
            with self._lock:
                self._pending -= rows

    def _table(self, batch: list[tuple[Any, ...]]) -> Any:
        import pyarrow as pa

        merged: dict[str, list[Any]] = {key: [] for key in (*RESERVED, *self.features)}
        for stamp, columns, probabilities, decisions, model_version, seconds, shadow in batch:
            n = len(probabilities)
            merged["time"] += [stamp] * n
            merged["model_version"] += [model_version] * n
            merged["probability"] += probabilities.tolist()
            merged["decision"] += decisions.tolist()
            merged["latency_ms"] += [None if seconds is None else seconds * 1e3] * n
            tag, shadow_p, shadow_d, shadow_s = shadow or (None, None, None, None)
            merged["shadow_model_version"] += [tag] * n
            merged["shadow_probability"] += [None] * n if shadow_p is None else shadow_p.tolist()
            merged["shadow_decision"] += [None] * n if shadow_d is None else shadow_d.tolist()
            merged["shadow_latency_ms"] += [None if shadow_s is None else shadow_s * 1e3] * n
            for name in self.features:
                merged[name] += columns[name]
        # The reserved columns' types are fixed: a first batch with no shadow (all null) must
        # not give the file a column type that a later shadow score cannot fill.
        types = {"time": pa.int64(), "decision": pa.bool_(), "shadow_decision": pa.bool_()}
        types |= {k: pa.string() for k in ("model_version", "shadow_model_version")}
        types |= {k: pa.float64() for k in RESERVED if k not in types}
        arrays = {k: pa.array(v, type=types.get(k)) for k, v in merged.items()}
        arrays["time"] = arrays["time"].cast(pa.timestamp("us", tz="UTC"))
        table = pa.table(arrays)
        return table if self._schema is None else table.cast(self._schema)

    def _append(self, table: Any) -> None:
        import pyarrow.parquet as pq

        if self._writer is None:
            start = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            self._count += 1
            name = f"predictions-{start}-{os.getpid()}-{self._count}{SUFFIX}{PART}"
            self._path = self.directory / name
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self._path, self._schema)
            self._opened = time.monotonic()
        self._writer.write_table(table)

    def _rotate_if_due(self) -> None:
        if self._writer is None or self._path is None:
            return
        too_big = self._path.stat().st_size >= self.rotate_bytes
        too_old = time.monotonic() - self._opened >= self.rotate_seconds
        if too_big or too_old:
            self._close_file()

    def _close_file(self) -> None:
        if self._writer is None or self._path is None:
            return
        self._writer.close()
        self._path.rename(self._path.with_name(self._path.name.removesuffix(PART)))
        self._writer = self._path = None


def read_log(directory: str | Path) -> pd.DataFrame:
    """Every closed prediction log file in `directory`, in time order, as one frame."""
    return read_log_files(directory)[0]


def read_log_files(directory: str | Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """The closed log files that can be read, as one frame, and why each other one cannot.

    A file cut short (a full disk, a killed writer) must not hide the rest of the log.
    """
    frames, unreadable = [], {}
    for path in sorted(Path(directory).glob(f"*{SUFFIX}")):
        try:
            frames.append(pd.read_parquet(path))
        except Exception as exc:  # pyarrow raises several types for a damaged file
            unreadable[path.name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    if not frames:
        return pd.DataFrame(columns=list(RESERVED)), unreadable
    return pd.concat(frames, ignore_index=True), unreadable
