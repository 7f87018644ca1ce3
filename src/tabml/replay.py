"""Canary traffic for the local target, which has no router: recent requests, replayed.

The requests are the newest records of the environment's prediction log (tabml.serving.predlog),
else the golden records of the smoke test. Every URL gets the same records at the same rate,
one `/score` request each, so the canary and the stable are judged on the same traffic.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from tabml import smoke
from tabml.serving.predlog import SUFFIX

MAX_RECORDS = 1000
TIMEOUT_SECONDS = 5.0


def recent_records(log_dir: Path, gold: dict[str, Any]) -> tuple[list[dict], str]:
    """Up to MAX_RECORDS newest logged requests (the model's features only), and their source."""
    features = list(gold["records"][0])
    frames, rows = [], 0
    for path in sorted(log_dir.glob(f"*{SUFFIX}"), reverse=True):
        try:
            frame = pd.read_parquet(path, columns=features)
        except Exception:  # pyarrow raises several types; a damaged file is skipped
            continue
        frames.append(frame)
        rows += len(frame)
        if rows >= MAX_RECORDS:
            break
    if not rows:
        return gold["records"], "the golden records"
    recent = pd.concat(frames[::-1], ignore_index=True).tail(MAX_RECORDS)
    return json.loads(recent.to_json(orient="records")), f"{len(recent)} records of {log_dir}"


def send(url: str, records: list[dict], rate: float, seconds: float) -> Counter:
    """`/score` requests to `url` at `rate` a second for `seconds`; the count of each status."""
    statuses: Counter = Counter()
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        wait = start + i / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            status, _ = smoke.call(url, "/score", {"client": records[i % len(records)]},
                                   timeout=TIMEOUT_SECONDS)  # fmt: skip
        except OSError:
            status = 0  # no answer at all
        statuses[str(status)] += 1
    return statuses


def replay(urls: dict[str, str], records: list[dict], rate: float, seconds: float) -> dict:
    """The same traffic to every URL at once; the statuses each answered, by name."""
    answered: dict[str, Counter] = {}

    def drive(name: str, url: str) -> None:
        answered[name] = send(url, records, rate, seconds)

    threads = [threading.Thread(target=drive, args=item) for item in urls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {name: dict(answered[name]) for name in urls}
