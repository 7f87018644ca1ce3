"""`make monitor`: drift of a window of production inputs against the training reference.

    python -m tabml.monitor --out build/monitor [--model M] [--reference R] [--metrics M] \
        [--log DIR [--since TIME]] [--start N] [--stop M] [--pushgateway URL] \
        [--metrics-file PATH.prom]

The model, the reference profile and the model's metrics default to params.yaml's
`paths.model`, `paths.reference` and `paths.metrics`.

The window is the service's prediction log (`--log`, the rows the model file served) or rows
[start, stop) of `ingest.source` (default: the newest `monitor.window_rows`). Writes
`monitor.json`, `monitor.md` and two plots to `--out`, prints `drift=true|false` (also to
`$GITHUB_OUTPUT`). Exit status: 0 no drift, 3 drift (0 with `--no-fail-on-drift`), 1 bad
input, 2 bad arguments. With `--pushgateway` or `--metrics-file` the figures also go out as
Prometheus metrics (`tabml.pushmetrics`), for the alert rules of deploy/prometheus/rules.yml.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabml import cli, lineage, pushmetrics
from tabml.ingest import ingest, read_source
from tabml.io import DataError, atomic_open, atomic_path, file_md5, read_json, write_json
from tabml.monitoring import SCORE, Reference, assess, headline, score_profile
from tabml.params import Params, load_params
from tabml.predict import features, labels, load_model, score
from tabml.serving.predlog import read_log_files

log = logging.getLogger(__name__)

EXIT_DRIFT = 3


def check_log_dir(log_dir: str) -> None:
    """Refuse a prediction log location that is no directory, saying what it should be."""
    where = "PREDICTION_LOG names the service's log directory (make serve: serve.prediction_log)"
    if not Path(log_dir).exists():
        raise DataError(f"directory {log_dir} does not exist; {where}.")
    if not Path(log_dir).is_dir():
        raise DataError(f"{log_dir} is not a directory; {where}.")


def log_window(log_dir: str, since: str | None, version: str) -> tuple[pd.DataFrame, dict]:
    """The records of the prediction log that model `version` served (since a time).

    A file that cannot be read is skipped, named in the log and in the result; only a log whose
    every file is unreadable is an error.
    """
    check_log_dir(log_dir)
    frame, unreadable = read_log_files(log_dir)
    for name, reason in unreadable.items():
        log.warning("%s/%s skipped: %s", log_dir, name, reason)
    if frame.empty and unreadable:
        raise DataError(f"{log_dir}: none of its {len(unreadable)} log file(s) can be read.")
    if frame.empty:
        raise DataError(f"{log_dir}: the prediction log holds no closed file.")
    missing = [c for c in (SCORE, "model_version", "time") if c not in frame.columns]
    if missing:
        raise DataError(f"{log_dir}: the prediction log lacks the column(s) {missing}.")
    if since:
        try:
            start = pd.Timestamp(since)
        except ValueError:
            raise DataError(f"--since {since!r} is not an ISO 8601 time.") from None
        start = start.tz_localize("UTC") if start.tzinfo is None else start
        frame = frame[frame["time"] >= start]
        if frame.empty:
            raise DataError(f"{log_dir}: no record at or after {start.isoformat()}.")
    ours = frame["model_version"] == version
    if not ours.any():
        found = sorted(frame["model_version"].astype(str).unique())[:5]
        raise DataError(
            f"{log_dir}: no prediction of model {version} (the log holds {found}); "
            "monitor with the model file that served them."
        )
    frame = frame[ours].reset_index(drop=True)
    about = {"kind": "prediction log", "path": str(log_dir), "model_version": version,
             "since": since, "rows": len(frame), "unreadable_files": unreadable,
             "skipped_files": len(unreadable)}  # fmt: skip
    return frame, about


def source_window(
    params: Params, start: int | None, stop: int | None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Source rows [start, stop); by default the newest `monitor.window_rows`."""
    cfg = params.ingest
    raw = read_source(cfg.source, cfg.sep, cfg.database)
    start = start if start is not None else max(len(raw) - params.monitor.window_rows, 0)
    frame = ingest(raw, replace(cfg, start=start, stop=stop), params.base.time_column)
    about = {"kind": "source rows", "path": cfg.source, "start": start,
             "stop": start + len(frame), "rows": len(frame)}  # fmt: skip
    return frame, about


def reference_scores(profile: dict[str, Any], params: Params, model: Any) -> np.ndarray:
    """The model's scores on the reference window of the profile."""
    window = replace(params.ingest, start=profile["start"], stop=profile["stop"])
    frame = ingest(
        read_source(profile["source"], window.sep, window.database),
        window,
        params.base.time_column,
    )
    return score(model, frame)


def plot(result: dict[str, Any], scores: np.ndarray, ref_scores: np.ndarray, out: Path) -> None:
    """Feature PSI bars against the limit, and the score distributions, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["features"][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(rows) + 1.2))
    colors = ["tab:red" if r["drifted"] else "tab:blue" for r in rows]
    ax.barh([r["feature"] for r in rows], [r["psi"] for r in rows], color=colors)
    ax.axvline(result["limits"]["max_feature_psi"], color="black", linestyle="--", label="limit")
    ax.set_xlabel("PSI against the reference")
    ax.legend(loc="lower right")
    fig.tight_layout()
    with atomic_path(out / "feature_psi.png") as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3))
    bins = np.linspace(0, max(float(np.max(scores)), float(np.max(ref_scores))), 40)
    ax.hist(ref_scores, bins=bins, density=True, alpha=0.5, label="reference")
    ax.hist(scores, bins=bins, density=True, alpha=0.5, label="window")
    ax.set_xlabel(f"predicted probability (PSI {result['score']['psi']:.2f})")
    ax.legend()
    fig.tight_layout()
    with atomic_path(out / "scores.png") as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def to_markdown(result: dict[str, Any]) -> str:
    """The readable report: verdict, what was compared, per-feature table, score, performance."""
    w, ref, limits = result["window"], result["reference"], result["limits"]
    where = (
        f"rows [{w['start']}, {w['stop']}) of `{w['path']}`"
        if w["kind"] == "source rows"
        else f"prediction log `{w['path']}` (model `{w['model_version']}`)"
    )
    lines = [
        "## Drift monitor", "", f"**{result['headline']}**", "",
        f"Window: {where}, {w['rows']:,} rows. Reference: rows [{ref['start']}, {ref['stop']}) "
        f"of `{ref['source']}` ({ref['rows']:,} rows) and model `{result['model']}`'s scores "
        "on them.", "",
    ]  # fmt: skip
    if w.get("unreadable_files"):
        names = ", ".join(f"`{name}`" for name in w["unreadable_files"])
        lines += [f"**Skipped {len(w['unreadable_files'])} unreadable log file(s):** {names}.", ""]
    lines += [
        f"| feature | kind | PSI | drift (> {limits['max_feature_psi']}) | what moved |",
        "|---|---|---:|---|---|",
    ]  # fmt: skip
    for row in result["features"]:
        flag = "**yes**" if row["drifted"] else "no"
        moved = "; ".join(row["detail"]).replace("|", "\\|")
        lines.append(f"| {row['feature']} | {row['kind']} | {row['psi']:.3f} | {flag} | {moved} |")
    s = result["score"]
    lines += ["", f"Score: PSI {s['psi']:.3f} (limit {limits['max_score_psi']}), median "
              f"{s['median']:.3f} (reference {s['reference_median']:.3f})."]  # fmt: skip
    perf = result["performance"]
    if perf:
        lines.append(
            f"Performance on the window's labels: ROC AUC {perf['roc_auc']:.3f} (evaluation "
            f"{perf['expected_roc_auc']:.3f}, drop {perf['roc_auc_drop']:+.3f}, limit "
            f"{limits['max_auc_drop']}), PR AUC {perf['pr_auc']:.3f}, positive rate "
            f"{perf['positive_rate']:.1%}."
        )
    else:
        lines.append("Performance: no labels in the window.")
    if result["excluded"]:
        lines.append(f"Not measured (`drift.exclude`): {', '.join(result['excluded'])}.")
    lines += [
        "", "![Feature PSI](feature_psi.png)", "", "![Score distributions](scores.png)", "",
        "Limits: sections `drift` and `monitor` of `params.yaml`. Exit status 3 means drift.",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--model", help="default: paths.model")
    ap.add_argument("--reference", help="reference profile (JSON); default: paths.reference")
    ap.add_argument("--metrics", help="the model's evaluation; default: paths.metrics")
    ap.add_argument("--out", required=True, help="directory for the result and the report")
    ap.add_argument("--log", help="prediction log directory (default: a window of the source)")
    ap.add_argument("--since", help="only log records at or after this time (ISO 8601, UTC)")
    ap.add_argument("--start", type=int, help="first source row of the window")
    ap.add_argument("--stop", type=int, help="source row after the window")
    ap.add_argument("--no-fail-on-drift", action="store_true", help="exit 0 on drift")
    ap.add_argument("--pushgateway", help="push the drift figures to this Pushgateway URL")
    ap.add_argument("--metrics-file", help="write the drift figures to this .prom textfile")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    if args.log:  # before the model loads: a wrong argument is told at once
        check_log_dir(args.log)
    args.model = args.model or params.paths.model
    args.reference = args.reference or params.paths.reference
    args.metrics = args.metrics or params.paths.metrics
    for path in (args.model, args.reference):
        if not Path(path).is_file():
            raise DataError(f"{path}: file not found; run `make repro` first.")
    model = load_model(args.model)
    profile = read_json(args.reference)
    ref_scores = reference_scores(profile, params, model)
    expected = read_json(args.metrics)["test"]["roc_auc"]
    reference = Reference(profile["columns"], score_profile(ref_scores), expected)
    if args.log:
        frame, about = log_window(args.log, args.since, lineage.model_tag(params, args.model))
        scores, y = frame[SCORE].to_numpy(dtype=float), None
    else:
        frame, about = source_window(params, args.start, args.stop)
        scores = score(model, frame)
        y = labels(frame, params).to_numpy() if params.base.target in frame else None
    result = assess(frame, scores, y, reference, features(model), params)
    result |= {
        "headline": headline(result), "window": about, "model": file_md5(args.model),
        "reference": {k: profile[k] for k in ("source", "start", "stop", "rows")},
    }  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(result, scores, ref_scores, out)
    write_json(result, out / "monitor.json")
    with atomic_open(out / "monitor.md") as fh:
        fh.write(to_markdown(result))
    if args.pushgateway or args.metrics_file:
        registry = pushmetrics.monitor_metrics(result, lineage.model_tag(params, args.model))
        for line in pushmetrics.publish(registry, pushmetrics.MONITOR_JOB,
                                        pushgateway=args.pushgateway,
                                        metrics_file=args.metrics_file):  # fmt: skip
            print(f"Metrics {line}.")
    flag = f"drift={str(result['drift']).lower()}"
    print(result["headline"])
    print(flag)
    if os.environ.get("GITHUB_OUTPUT"):
        with Path(os.environ["GITHUB_OUTPUT"]).open("a", encoding="utf-8") as fh:
            fh.write(flag + "\n")
    if result["drift"] and not args.no_fail_on_drift:
        sys.exit(EXIT_DRIFT)


if __name__ == "__main__":
    cli.run(main)
