"""Shadow scoring's queue and log columns without a server: a full queue drops, never waits."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from tabml.monitor import log_window
from tabml.serving.predlog import RESERVED, PredictionLog, read_log
from tabml.serving.runtime import SHADOW_ENV, Settings, shadow_model_tag
from tabml.serving.shadow import ShadowQueue

COLUMNS = {"x": [1.0, 2.0, 3.0]}


class Slow:
    """A shadow model that takes `seconds` per call until released."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.calls = seconds, 0
        self.release = threading.Event()

    def __call__(self, columns) -> np.ndarray:
        self.calls += 1
        self.release.wait(self.seconds)
        return np.asarray(columns["x"], dtype=float) / 10


def test_a_full_queue_drops_at_once_and_the_rest_is_scored():
    slow, results = Slow(5.0), []
    queue = ShadowQueue(slow, lambda *r: results.append(r), max_pending=3, wait_seconds=0.01)
    try:
        assert queue.submit(COLUMNS, 3, "first")
        deadline = time.monotonic() + 5
        while slow.calls == 0:  # the thread holds the first batch, still counted as pending
            assert time.monotonic() < deadline
            time.sleep(0.01)
        start = time.perf_counter()
        refused = [queue.submit(COLUMNS, 1, f"extra {i}") for i in range(100)]
        assert time.perf_counter() - start < 0.05  # 100 refusals: no waiting on the shadow
        assert refused == [False] * 100
    finally:
        slow.release.set()
        queue.close()
    assert [payload for payload, *_ in results] == ["first"]
    _, probabilities, seconds = results[0]
    np.testing.assert_allclose(probabilities, [0.1, 0.2, 0.3])
    assert seconds > 0
    # Once drained, the queue takes work again.
    queue = ShadowQueue(Slow(0), lambda *r: results.append(r), max_pending=1, wait_seconds=0.01)
    assert queue.submit(COLUMNS, 1, "again")
    assert not queue.submit(COLUMNS, 2, "too big")  # more records than the queue holds
    queue.close()
    assert results[-1][0] == "again"


def test_what_waits_is_scored_in_one_call_and_each_request_gets_its_share():
    slow, results = Slow(0), []
    queue = ShadowQueue(slow, lambda *r: results.append(r), max_pending=10, wait_seconds=5)
    batches = [({"x": [1.0]}, "a"), ({"x": [2.0, 3.0]}, "b"), ({"x": [4.0]}, "c")]
    for columns, payload in batches:
        assert queue.submit(columns, len(columns["x"]), payload)
    queue.close()  # drains what waits: the thread slept through all three submissions
    assert slow.calls == 1
    assert [payload for payload, *_ in results] == ["a", "b", "c"]
    for (columns, _), (_, probabilities, seconds) in zip(batches, results, strict=True):
        np.testing.assert_allclose(probabilities, np.asarray(columns["x"]) / 10)
        assert seconds == results[0][2]  # the one call's time, for each share


def test_a_failing_shadow_still_hands_the_record_on():
    def broken(columns):
        raise RuntimeError("shadow broke")

    results = []
    queue = ShadowQueue(broken, lambda *r: results.append(r), max_pending=10, wait_seconds=0.01)
    assert queue.submit(COLUMNS, 3, "p")
    queue.close()
    assert results == [("p", None, None)]


def test_the_log_records_both_models_and_reads_with_old_files(tmp_path):
    log = PredictionLog(tmp_path, ["x"], flush_seconds=0.05)
    p, d = np.array([0.2, 0.7]), np.array([False, True])
    cols = {"x": [1.0, 2.0]}
    log.write(cols, p, d, "m:1")  # no shadow (and no latency: as old writers did)
    log.write(cols, p, d, "m:1", seconds=0.002, shadow=("s:2", None, None, None))  # dropped
    log.write(cols, p, d, "m:1", seconds=0.002, shadow=("s:2", p / 2, p / 2 >= 0.3, 0.004))
    log.close()
    # A file of a writer from before the latency and shadow columns: its name sorts first.
    old = pd.DataFrame(
        {
            "time": pd.to_datetime([1, 2], unit="s", utc=True),
            "model_version": "m:1",
            "probability": p,
            "decision": d,
            "x": [3.0, 4.0],
        }
    )
    old.to_parquet(tmp_path / "predictions-00000000T000000000000Z-1-1.parquet")  # fmt: skip
    frame = read_log(tmp_path)
    assert list(frame.columns) == ["time", "model_version", "probability", "decision", "x",
                                   *RESERVED[4:]]  # fmt: skip
    assert frame["x"].tolist() == [3.0, 4.0, *[1.0, 2.0] * 3]
    new = frame.iloc[2:]
    assert new["shadow_model_version"].isna().tolist() == [True, True, False, False, False, False]
    assert set(new["shadow_model_version"].dropna()) == {"s:2"}
    assert new["shadow_probability"].iloc[:4].isna().all()
    assert new["shadow_probability"].iloc[4:].tolist() == [0.1, 0.35]
    assert new["shadow_decision"].iloc[4:].tolist() == [False, True]
    assert new["latency_ms"].tolist()[2:] == [2.0] * 4
    assert new["shadow_latency_ms"].iloc[4:].tolist() == [4.0, 4.0]
    # The drift monitor reads old and new records alike.
    window, about = log_window(str(tmp_path), None, "m:1")
    assert about["rows"] == 8 and window["probability"].notna().all()


def test_shadow_setting_is_exact_and_the_environment_overrides_it(monkeypatch):
    base = Settings(model_tag="m:1", shadow_model_tag="s:2")
    monkeypatch.delenv(SHADOW_ENV, raising=False)
    assert shadow_model_tag(base) == "s:2"
    assert shadow_model_tag(Settings(model_tag="m:1")) == ""
    monkeypatch.setenv(SHADOW_ENV, "none")
    assert shadow_model_tag(base) == ""
    monkeypatch.setenv(SHADOW_ENV, "s:3")
    assert shadow_model_tag(base) == "s:3"
    monkeypatch.setenv(SHADOW_ENV, "s:latest")
    with pytest.raises(ValueError, match="exact"):
        shadow_model_tag(base)
    with pytest.raises(ValueError, match="shadow_model_tag must be an exact"):
        Settings(model_tag="m:1", shadow_model_tag="s")
