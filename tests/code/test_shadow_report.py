"""`make shadow-report` on small constructed logs: each figure recomputed here by hand, and each
bad input one line."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabml import cli, shadow_report
from tabml.drift import DECILES, PSI_FLOOR

ROOT = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(7)
N = 200


def constructed_log() -> pd.DataFrame:
    """An older model pair, then N records of the newest pair, 5 of them dropped by the shadow."""
    main = RNG.uniform(0, 1, N)
    shadow = np.clip(main + RNG.normal(0.05, 0.15, N), 0, 1)
    older = pd.DataFrame({
        "model_version": "m:0", "probability": [0.9, 0.1, 0.6], "decision": [True, False, True],
        "latency_ms": 1.0, "shadow_model_version": "s:0", "shadow_probability": [0.1, 0.1, 0.1],
        "shadow_decision": False, "shadow_latency_ms": 1.0,
    })  # fmt: skip
    newest = pd.DataFrame({
        "model_version": "m:1", "probability": main, "decision": main >= 0.5,
        "latency_ms": RNG.uniform(0.1, 0.5, N), "shadow_model_version": "s:2",
        "shadow_probability": shadow, "shadow_decision": pd.Series(shadow >= 0.4, dtype=object),
        "shadow_latency_ms": RNG.uniform(0.05, 0.2, N),
    })  # fmt: skip
    newest.loc[:4, ["shadow_probability", "shadow_decision", "shadow_latency_ms"]] = None
    frame = pd.concat([older, newest], ignore_index=True)
    frame.insert(0, "time", pd.date_range("2026-01-01", periods=len(frame), freq="s", tz="UTC"))
    frame["x"] = 1.0
    return frame


def psi_by_hand(expected: np.ndarray, actual: np.ndarray) -> float:
    edges = np.unique(np.quantile(expected, DECILES))
    e = np.bincount(np.searchsorted(edges, expected, "right"), minlength=len(edges) + 1)
    a = np.bincount(np.searchsorted(edges, actual, "right"), minlength=len(edges) + 1)
    e, a = np.maximum(e / e.sum(), PSI_FLOOR), np.maximum(a / a.sum(), PSI_FLOOR)
    return float(((a - e) * np.log(a / e)).sum())  # the empty missing-value bin adds 0


def auc_by_hand(y: np.ndarray, s: np.ndarray) -> float:
    pairs = list(product(s[y == 1], s[y == 0]))
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)


def test_compares_the_newest_pair_as_recomputed_by_hand():
    frame = constructed_log()
    y = (RNG.uniform(0, 1, len(frame)) < frame["probability"]).astype(int).to_numpy()
    result = shadow_report.compare(frame, y)
    kept = frame.iloc[3 + 5 :]  # the older pair and the 5 dropped records are left out
    main, shadow = kept["probability"].to_numpy(), kept["shadow_probability"].to_numpy(float)
    assert (result["model_version"], result["shadow_model_version"]) == ("m:1", "s:2")
    assert (result["records"], result["shadow_scored"], result["shadow_dropped"]) == (N, N - 5, 5)
    assert result["other_records"] == 3
    agree = ((main >= 0.5) == (shadow >= 0.4)).mean()
    assert 0.5 < agree < 1 and result["agreement"] == pytest.approx(agree)
    assert result["positive_rate"]["shadow"] == pytest.approx((shadow >= 0.4).mean())
    assert result["psi"] == pytest.approx(psi_by_hand(main, shadow))
    assert result["psi"] > 0.01  # the shadow scores higher: a shift the measure sees
    for key, column in (("model", "latency_ms"), ("shadow", "shadow_latency_ms")):
        values = kept[column].to_numpy(float)
        assert result["latency"][key]["p99_ms"] == pytest.approx(np.percentile(values, 99))
        assert result["latency"][key]["p50_ms"] == pytest.approx(np.median(values))
    y_kept = y[3 + 5 :]
    perf = result["performance"]
    assert perf["model"]["roc_auc"] == pytest.approx(auc_by_hand(y_kept, main))
    assert perf["shadow"]["roc_auc"] == pytest.approx(auc_by_hand(y_kept, shadow))
    assert 0 < perf["shadow"]["pr_auc"] <= 1
    assert shadow_report.compare(frame)["performance"] is None


def test_the_entry_writes_both_reports_over_the_window(tmp_path, params, capsys):
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    frame = constructed_log()
    frame.to_parquet(log_dir / "predictions-1.parquet")
    out = tmp_path / "out"
    argv = ["--params", str(ROOT / "params.yaml"), "--log", str(log_dir), "--out", str(out)]
    shadow_report.main([*argv, "--last", "50"])
    result = json.loads((out / "shadow.json").read_text())
    assert result["records"] == 50 and result["shadow_dropped"] == 0
    assert result["start"] == frame["time"].iloc[-50].isoformat()
    text = (out / "shadow.md").read_text()
    assert "no labels" in text and "`s:2`" in text
    assert f"{result['agreement']:.1%}" in capsys.readouterr().out
    since = frame["time"].iloc[-20].isoformat()
    shadow_report.main([*argv, "--since", since])
    assert json.loads((out / "shadow.json").read_text())["records"] == 20


def bad_input(tmp_path: Path, case: str) -> list[str]:
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    frame = constructed_log()
    since = []
    if case == "old log":
        frame = frame[["time", "model_version", "probability", "decision", "x"]]
    elif case == "no shadow in window":
        frame["shadow_model_version"] = None
    elif case == "empty window":
        since = ["--since", "2030-01-01"]
    elif case == "bad time":
        since = ["--since", "yesterday-ish"]
    elif case == "all dropped":
        frame["shadow_probability"] = None
    if case == "no log":
        log_dir.rmdir()
    elif case != "no closed file":
        frame.to_parquet(log_dir / "predictions-1.parquet")
    return ["--log", str(log_dir), "--out", str(tmp_path / "out"), *since]


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("no log", ["no such prediction log directory", "PREDICTION_LOG="]),
        ("no closed file", ["holds no closed file"]),
        ("old log", ["no shadow columns", "SHADOW="]),
        ("no shadow in window", ["no record of the window was sent to a shadow", "SHADOW="]),
        ("all dropped", ["dropped every record"]),
        ("empty window", ["no record at or after LOG_SINCE=2030-01-01"]),
        ("bad time", ["LOG_SINCE='yesterday-ish' is not an ISO 8601 time"]),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, case, words):
    argv = bad_input(tmp_path, case)
    with pytest.raises(SystemExit) as stopped:
        cli.run(shadow_report.main, ["--params", str(ROOT / "params.yaml"), *argv])
    assert stopped.value.code == cli.EXIT_DATA_ERROR
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), err
    assert all(word in lines[0] for word in words), lines[0]
    assert not (tmp_path / "out").exists()
