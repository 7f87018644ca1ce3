"""`make shadow-report`: the shadow model against the served one, over the prediction log.

    python -m tabml.shadow_report --log DIR --out DIR [--since TIME] [--last N]

Reads the records of the log (`--since` a time, then the `--last` N), keeps those of the newest
pair of served and shadow model, and compares them: how often both decide the same, the PSI of
the shadow's scores against the served model's (the monitor's decile bins), each model's
scoring time, and ROC AUC and PR AUC of both where the log carries labels (`base.target`; the
service's log has none and no record id to join outcomes to, so the report says "no labels").
Writes `shadow.json` and `shadow.md` to `--out` and prints a short summary. Exit status: 0, or
1 with one line naming what is wrong (no log, a log without shadow columns, an empty window).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabml import cli
from tabml.drift import column_psi
from tabml.io import DataError, atomic_open, write_json
from tabml.monitoring import score_profile
from tabml.params import load_params
from tabml.predict import labels
from tabml.serving.predlog import read_log_files

log = logging.getLogger(__name__)

SHADOW_COLUMNS = ("shadow_model_version", "shadow_probability", "shadow_decision")
HOW = "serve with a shadow model (make bento SHADOW=<model file or tag>, then make serve)"


def window(frame: pd.DataFrame, since: str | None, last: int | None) -> pd.DataFrame:
    """The log's records at or after `since`, then the newest `last` of them."""
    if since:
        try:
            start = pd.Timestamp(since)
        except ValueError:
            raise DataError(
                f"LOG_SINCE={since!r} is not an ISO 8601 time; e.g. 2026-01-31T12:00."
            ) from None
        start = start.tz_localize("UTC") if start.tzinfo is None else start
        frame = frame[frame["time"] >= start]
    frame = frame.sort_values("time", kind="stable")
    return frame.tail(last) if last else frame


def latency(values: pd.Series) -> dict[str, float] | None:
    """p50 and p99 in milliseconds, None when the log did not record it."""
    present = values.dropna().to_numpy(dtype=float)
    if not len(present):
        return None
    return {
        "p50_ms": float(np.percentile(present, 50)),
        "p99_ms": float(np.percentile(present, 99)),
    }


def performance(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {
        "roc_auc": float(roc_auc_score(y, scores)),
        "pr_auc": float(average_precision_score(y, scores)),
    }


def compare(frame: pd.DataFrame, y: np.ndarray | None = None) -> dict[str, Any]:
    """Served against shadow on the window's records of the newest model pair.

    Args:
        frame: prediction log records, in time order, with the shadow columns.
        y: binary labels aligned with `frame`, or None.
    """
    tagged = frame["shadow_model_version"].notna()
    if not tagged.any():
        raise DataError(f"no record of the window was sent to a shadow model; {HOW}.")
    newest = frame[tagged].iloc[-1]
    pair = (frame["model_version"] == newest["model_version"]) & (
        frame["shadow_model_version"] == newest["shadow_model_version"]
    )
    scored = pair & frame["shadow_probability"].notna()
    both = frame[scored]
    if both.empty:
        tag = newest["shadow_model_version"]
        raise DataError(f"the shadow model {tag} dropped every record of the window.")
    main, shadow = both["probability"].to_numpy(float), both["shadow_probability"].to_numpy(float)
    agree = (
        both["decision"].astype(bool).to_numpy() == both["shadow_decision"].astype(bool).to_numpy()
    )
    result: dict[str, Any] = {
        "model_version": newest["model_version"],
        "shadow_model_version": newest["shadow_model_version"],
        "records": int(pair.sum()), "shadow_scored": len(both),
        "shadow_dropped": int(pair.sum() - len(both)),
        "other_records": int(len(frame) - pair.sum()),
        "start": both["time"].min().isoformat(), "stop": both["time"].max().isoformat(),
        "agreement": float(agree.mean()),
        "positive_rate": {"model": float(both["decision"].astype(bool).mean()),
                          "shadow": float(both["shadow_decision"].astype(bool).mean())},
        "psi": column_psi(pd.Series(shadow), score_profile(main)),
        "latency": {"model": latency(both.get("latency_ms", pd.Series(dtype=float))),
                    "shadow": latency(both["shadow_latency_ms"])},
        "performance": None,
    }  # fmt: skip
    if y is not None:
        y_both = np.asarray(y)[scored.to_numpy()]
        if len(np.unique(y_both)) == 2:
            result["performance"] = {
                "model": performance(y_both, main),
                "shadow": performance(y_both, shadow),
            }
    return result


def to_markdown(r: dict[str, Any]) -> str:
    """The readable report."""
    lat, perf, rate = r["latency"], r["performance"], r["positive_rate"]

    def ms(key: str) -> str:
        return (
            "not recorded"
            if lat[key] is None
            else f"p50 {lat[key]['p50_ms']:.3f} ms, p99 {lat[key]['p99_ms']:.3f} ms"
        )

    lines = [
        "## Shadow model", "",
        f"**Served `{r['model_version']}`, shadow `{r['shadow_model_version']}`: the same "
        f"decision on {r['agreement']:.1%} of {r['shadow_scored']:,} records; PSI of the "
        f"shadow's scores {r['psi']:.3f}.**", "",
        f"Window: {r['start']} to {r['stop']}; {r['records']:,} records of this pair, "
        f"{r['shadow_dropped']:,} dropped by the shadow (its queue was full), "
        f"{r['other_records']:,} of other models left out.", "",
        "| | served | shadow |", "|---|---|---|",
        f"| positive decisions | {rate['model']:.1%} | {rate['shadow']:.1%} |",
        f"| scoring time | {ms('model')} | {ms('shadow')} |",
    ]  # fmt: skip
    if perf:
        for key in ("roc_auc", "pr_auc"):
            lines.append(f"| {key} | {perf['model'][key]:.4f} | {perf['shadow'][key]:.4f} |")
    lines += ["", "Performance: no labels in the window." if not perf else ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--log", required=True, help="prediction log directory")
    ap.add_argument("--out", required=True, help="directory for shadow.json and shadow.md")
    ap.add_argument("--since", help="only records at or after this time (ISO 8601, UTC)")
    ap.add_argument("--last", type=int, help="only the newest N records (after --since)")
    args = ap.parse_args(argv)
    if args.last is not None and args.last < 1:
        raise DataError(
            f"LOG_LAST={args.last}: give a positive number of records, or leave it empty."
        )
    if not Path(args.log).is_dir():
        where = "set PREDICTION_LOG= to the service's log directory (serve.prediction_log)"
        raise DataError(f"{args.log}: no such prediction log directory; {where}.")
    frame, unreadable = read_log_files(args.log)
    for name, reason in unreadable.items():
        log.warning("%s/%s skipped: %s", args.log, name, reason)
    if frame.empty:
        raise DataError(
            f"{args.log}: the prediction log holds no closed file; score some records first."
        )
    missing = [c for c in SHADOW_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{args.log}: the log has no shadow columns {missing} (written before shadow "
            f"scoring); {HOW}."
        )
    frame = window(frame, args.since, args.last).reset_index(drop=True)
    if frame.empty:
        raise DataError(
            f"{args.log}: no record at or after LOG_SINCE={args.since}; choose an earlier time."
        )
    params = load_params(args.params)
    y = labels(frame, params).to_numpy() if params.base.target in frame.columns else None
    result = compare(frame, y)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(result, out / "shadow.json")
    with atomic_open(out / "shadow.md") as fh:
        fh.write(to_markdown(result))
    print(to_markdown(result).splitlines()[2].strip("*"))
    print(f"Report: {out / 'shadow.md'}, {out / 'shadow.json'}")


if __name__ == "__main__":
    cli.run(main)
