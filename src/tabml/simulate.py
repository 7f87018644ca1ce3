"""`make simulate`: replay the shipped data in time order, monitor each window, retrain on drift.

    python -m tabml.simulate [--windows N] [--out build/simulate]

The source is cut into `simulate.windows` windows in time order. A model is trained on the
first; each later window arrives as production traffic and is scored by the deployed model,
then monitored on its inputs and scores only (labels, the subscriptions, arrive after the
calls). On drift, the labels of that window have arrived by its end: the model is retrained on
the newest `simulate.retrain_windows` windows and deployed for the next window. Every score is
forward in time: a model is only ever scored on a window after the ones it was trained on.

Per window the table gives the deployed model's ROC AUC / PR AUC, the model that was never
retrained, and the model retrained on the windows just before (what retraining at every window
would have deployed), so it shows whether retraining recovers the performance lost to drift.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from tabml import cli
from tabml.dataset import feature_columns
from tabml.evaluate import compute_metrics
from tabml.ingest import ingest, read_source
from tabml.io import DataError, atomic_open, write_json
from tabml.monitoring import assess, reference_from
from tabml.params import Params, load_params
from tabml.predict import labels, score
from tabml.train import build_pipeline

log = logging.getLogger(__name__)

MODELS = ("never retrained", "deployed", "retrained")


def cut(frame: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    """`n` consecutive windows of (nearly) equal size, in time order."""
    if n < 2 or len(frame) < n:
        raise DataError(f"simulate.windows must be between 2 and the {len(frame)} rows; got {n}.")
    edges = [len(frame) * k // n for k in range(n + 1)]
    return [frame.iloc[a:b] for a, b in itertools.pairwise(edges)]


def simulate(frame: pd.DataFrame, params: Params, n_windows: int) -> list[dict[str, Any]]:
    """One row per window after the first: drift, and each model's metrics on the window."""
    parts = cut(frame, n_windows)
    features = feature_columns(params)
    keep = params.simulate.retrain_windows
    models: dict[tuple[int, int], Pipeline] = {}

    def span(last: int) -> tuple[int, int]:  # windows a retrain after window `last` uses
        return (0 if keep <= 0 else max(0, last + 1 - keep), last + 1)

    def model(windows: tuple[int, int]) -> Pipeline:
        if windows not in models:
            data = pd.concat(parts[windows[0] : windows[1]])
            models[windows] = build_pipeline(data, params).fit(
                data[features], labels(data, params)
            )
        return models[windows]

    def reference(windows: tuple[int, int]) -> Any:
        data = pd.concat(parts[windows[0] : windows[1]])
        return reference_from(data, score(model(windows), data), features)

    deployed = (0, 1)
    ref = reference(deployed)
    rows = []
    for k in range(1, len(parts)):
        window = parts[k]
        y = labels(window, params).to_numpy()
        result = assess(window, score(model(deployed), window), None, ref, features, params)
        spans = dict(zip(MODELS, ((0, 1), deployed, span(k - 1)), strict=True))
        metrics = {}
        for name, windows in spans.items():
            m = compute_metrics(y, score(model(windows), window), params)
            metrics[name] = {"roc_auc": m["roc_auc"], "pr_auc": m["pr_auc"], "windows": windows}
        rows.append(
            {"window": k + 1, "start": int(window.index[0]), "stop": int(window.index[-1]) + 1,
             "rows": len(window), "positive_rate": float(y.mean()), "drift": result["drift"],
             "top": [(f["feature"], f["psi"]) for f in result["features"] if f["drifted"]][:3],
             "score_psi": result["score"]["psi"], "models": metrics}
        )  # fmt: skip
        if result["drift"]:
            deployed = span(k)
            ref = reference(deployed)
    return rows


def _windows(windows: tuple[int, int]) -> str:
    first, stop = windows[0] + 1, windows[1]
    return f"w{first}" if first == stop else f"w{first}-{stop}"


def to_markdown(rows: list[dict[str, Any]], n_windows: int) -> str:
    """The table, one row per window, and the mean ROC AUC of each model."""
    lines = [
        "| window | rows | positive rate | drift | top drifted features (PSI) | score PSI "
        "| never retrained ROC / PR AUC | deployed ROC / PR AUC (trained on) "
        "| retrained ROC / PR AUC (trained on) |",
        "|---|---|---:|---|---|---:|---|---|---|",
    ]
    for r in rows:
        top = ", ".join(f"{name} {value:.2f}" for name, value in r["top"]) or "-"
        cells = [f"w{r['window']}", f"[{r['start']}, {r['stop']})", f"{r['positive_rate']:.1%}",
                 "**yes**" if r["drift"] else "no", top, f"{r['score_psi']:.2f}"]  # fmt: skip
        for name in MODELS:
            m = r["models"][name]
            trained = "" if name == MODELS[0] else f" ({_windows(m['windows'])})"
            cells.append(f"{m['roc_auc']:.3f} / {m['pr_auc']:.3f}{trained}")
        lines.append("| " + " | ".join(cells) + " |")
    means = {name: np.mean([r["models"][name]["roc_auc"] for r in rows]) for name in MODELS}
    summary = ", ".join(f"{name} {value:.3f}" for name, value in means.items())
    alarms = sum(r["drift"] for r in rows)
    lines += [
        "",
        f"{n_windows} windows in time order; drift found in {alarms} of {len(rows)}. "
        f"Mean ROC AUC over windows 2 to {n_windows}: {summary}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--windows", type=int, help="number of windows (default: simulate.windows)")
    ap.add_argument("--out", default="build/simulate", help="directory for the table")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    cfg = params.ingest
    frame = ingest(read_source(cfg.source, cfg.sep, cfg.database), cfg, params.base.time_column)
    frame.index = frame[params.base.time_column]  # windows name their source rows
    n_windows = args.windows or params.simulate.windows
    rows = simulate(frame, params, n_windows)
    table = to_markdown(rows, n_windows)
    out = Path(args.out)
    write_json(rows, out / "simulate.json")
    with atomic_open(out / "simulate.md") as fh:
        fh.write(table)
    print(table)


if __name__ == "__main__":
    cli.run(main)
