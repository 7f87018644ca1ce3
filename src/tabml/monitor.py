"""`make monitor`: drift of a window of production inputs against the training reference.

    python -m tabml.monitor --model models/model.joblib --reference data/reference/profile.json \
        --metrics reports/metrics.json --out build/monitor [--log DIR [--since TIME]] \
        [--start N] [--stop M]

The window is the service's prediction log (`--log`, the rows the model file served) or rows
[start, stop) of `ingest.source` (default: the newest `monitor.window_rows`). Writes
`monitor.json`, `monitor.md` and two plots to `--out`, prints `drift=true|false` (also to
`$GITHUB_OUTPUT`). Exit status: 0 no drift, 3 drift (0 with `--no-fail-on-drift`), 1 bad
input, 2 bad arguments.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from tabml import cli
from tabml.ingest import ingest, read_source
from tabml.io import DataError, atomic_open, atomic_path, file_md5, read_json, write_json
from tabml.monitoring import SCORE, Reference, assess, headline, score_profile
from tabml.params import Params, load_params
from tabml.serving.predlog import read_log
from tabml.train import labels, score

log = logging.getLogger(__name__)

EXIT_DRIFT = 3


def read_window(
    args: Any, params: Params, model: Any
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """The monitored rows, their scores, their labels (None if absent) and a description."""
    if args.log:
        frame = read_log(args.log)
        if frame.empty:
            raise DataError(f"{args.log}: the prediction log holds no closed file.")
        missing = [c for c in (SCORE, "model_version", "time") if c not in frame.columns]
        if missing:
            raise DataError(f"{args.log}: the prediction log lacks the column(s) {missing}.")
        if args.since:
            try:
                since = pd.Timestamp(args.since)
            except ValueError:
                raise DataError(f"--since {args.since!r} is not an ISO 8601 time.") from None
            since = since.tz_localize("UTC") if since.tzinfo is None else since
            frame = frame[frame["time"] >= since]
            if frame.empty:
                raise DataError(f"{args.log}: no record at or after {since.isoformat()}.")
        version = f"{params.serve.model_name}:{file_md5(args.model)}"
        ours = frame["model_version"] == version
        if not ours.any():
            found = sorted(frame["model_version"].astype(str).unique())[:5]
            raise DataError(
                f"{args.log}: no prediction of model {version} (the log holds {found}); "
                "monitor with the model file that served them."
            )
        frame = frame[ours].reset_index(drop=True)
        about = {"kind": "prediction log", "path": str(args.log), "model_version": version,
                 "since": args.since, "rows": len(frame)}  # fmt: skip
        return frame, frame[SCORE].to_numpy(dtype=float), None, about
    cfg = params.ingest
    raw = read_source(cfg.source, cfg.sep)
    start = args.start if args.start is not None else max(len(raw) - params.monitor.window_rows, 0)
    frame = ingest(raw, replace(cfg, start=start, stop=args.stop), params.base.time_column)
    y = labels(frame, params).to_numpy() if params.base.target in frame else None
    about = {"kind": "source rows", "path": cfg.source, "start": start,
             "stop": start + len(frame), "rows": len(frame)}  # fmt: skip
    return frame, score(model, frame), y, about


def reference_scores(profile: dict[str, Any], params: Params, model: Any) -> np.ndarray:
    """The model's scores on the reference window of the profile."""
    window = replace(params.ingest, start=profile["start"], stop=profile["stop"])
    frame = ingest(read_source(profile["source"], window.sep), window, params.base.time_column)
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
        lines.append(f"Not monitored (`monitor.exclude`): {', '.join(result['excluded'])}.")
    lines += [
        "", "![Feature PSI](feature_psi.png)", "", "![Score distributions](scores.png)", "",
        "Limits: section `monitor` of `params.yaml`. Exit status 3 means drift.",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--reference", required=True, help="reference profile (JSON)")
    ap.add_argument("--metrics", help="the model's evaluation (reports/metrics.json)")
    ap.add_argument("--out", required=True, help="directory for the result and the report")
    ap.add_argument("--log", help="prediction log directory (default: a window of the source)")
    ap.add_argument("--since", help="only log records at or after this time (ISO 8601, UTC)")
    ap.add_argument("--start", type=int, help="first source row of the window")
    ap.add_argument("--stop", type=int, help="source row after the window")
    ap.add_argument("--no-fail-on-drift", action="store_true", help="exit 0 on drift")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    for path in (args.model, args.reference):
        if not Path(path).is_file():
            raise DataError(f"{path}: file not found; run `make repro` first.")
    model = joblib.load(args.model)
    profile = read_json(args.reference)
    ref_scores = reference_scores(profile, params, model)
    expected = read_json(args.metrics)["test"]["roc_auc"] if args.metrics else None
    reference = Reference(profile["columns"], score_profile(ref_scores), expected)
    frame, scores, y, about = read_window(args, params, model)
    result = assess(frame, scores, y, reference, list(model.feature_names_in_), params)
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
