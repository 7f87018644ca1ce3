"""Scheduled retraining, one subcommand per step of `.github/workflows/retrain.yml`.

    python -m tabml.retrain production --out build/retrain/production
    python -m tabml.retrain window
    python -m tabml.retrain compare --production build/retrain/production \
        --candidate models/model.joblib --holdout data/processed/test.parquet \
        --out build/retrain [--drift true]

`production` fetches the model in production before anything changes: the MLflow model
`serve.model_name` at alias `production` when `MLFLOW_TRACKING_URI` names a store that has one,
otherwise the model the checked-out `dvc.lock` records, restored from the DVC cache or
reproduced (`dvc repro train`: the pipeline is deterministic) and checked against the lock's
md5. `window` moves `ingest.start`/`stop` to the newest `retrain.window_rows` rows of the source
and the drift reference (`drift.reference_*`) to their training part. `compare` scores both
models on the new test split, the newest rows, and decides whether a pull request is opened.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from tabml import cli, lineage
from tabml.evaluate import compute_metrics
from tabml.ingest import read_source
from tabml.io import DataError, atomic_open, file_md5, read_json, read_parquet, write_json
from tabml.params import Params, load_params
from tabml.predict import labels, load_model, score

log = logging.getLogger(__name__)

SHOWN = ("roc_auc", "pr_auc", "log_loss", "brier", "profit_top_k")


def set_param(text: str, section: str, key: str, value: Any) -> str:
    """`params.yaml` text with `section.key` set to `value`, every comment kept."""
    lines = text.splitlines(keepends=True)
    inside = False
    for i, line in enumerate(lines):
        if re.match(r"[^\s#]", line):
            inside = line.rstrip() == f"{section}:"
            continue
        found = re.match(rf"^(  {re.escape(key)}:[ \t]*)([^#\n]*?)([ \t]*#.*)?(\n?)$", line)
        if inside and found:
            text_value = "null" if value is None else str(value)
            lines[i] = f"{found[1]}{text_value}{found[3] or ''}{found[4]}"
            return "".join(lines)
    raise DataError(f"params.yaml has no key '{key}' in section '{section}'.")


def training_rows(start: int, rows: int, params: Params) -> tuple[int, int]:
    """Source rows the time split trains on, within a window of `rows` rows from `start`."""
    if params.split.strategy != "time":
        return start, start + rows  # a random split trains on rows from the whole window
    cfg = params.split
    return start, start + rows - round(rows * cfg.valid_size) - round(rows * cfg.test_size)


def newest_window(source_rows: int, params: Params) -> dict[str, Any]:
    """The newest `retrain.window_rows` rows, and the training part the reference follows."""
    size = params.retrain.window_rows
    start = 0 if size is None else max(0, source_rows - size)
    reference = training_rows(start, source_rows - start, params)
    return {"start": start, "stop": None, "reference": reference}


def move_window(params_path: str) -> dict[str, Any]:
    params = load_params(params_path)
    rows = len(read_source(params.ingest.source, params.ingest.sep))
    window = newest_window(rows, params)
    text = Path(params_path).read_text(encoding="utf-8")
    for section, key, value in (
        ("ingest", "start", window["start"]),
        ("ingest", "stop", window["stop"]),
        ("drift", "reference_start", window["reference"][0]),
        ("drift", "reference_stop", window["reference"][1]),
    ):
        text = set_param(text, section, key, value)
    with atomic_open(params_path) as fh:
        fh.write(text)
    return {"source_rows": rows, **window}


def from_registry(name: str, out: Path) -> dict[str, Any] | None:
    """The model at alias `production` of the MLflow registry, if the store has one."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from tabml import tracking

    tracking.configure()
    try:
        version = mlflow.MlflowClient().get_model_version_by_alias(name, lineage.PRODUCTION)
    except MlflowException as exc:
        log.info("no MLflow model %s@%s (%s); using dvc.lock's", name, lineage.PRODUCTION, exc)
        return None
    model = mlflow.sklearn.load_model(f"models:/{name}@{lineage.PRODUCTION}")
    joblib.dump(model, out / "model.joblib")
    return {"source": f"MLflow model {name}@{lineage.PRODUCTION} (version {version.version})",
            "train_rows": None}  # fmt: skip


def from_lock(params: Params, out: Path) -> dict[str, Any]:
    """The model the checked-out dvc.lock records: from the DVC cache, or reproduced."""
    expected = lineage.locked_md5(lineage.MODEL)
    # `dvc repro train` checks the model out of the cache when it is there, trains otherwise.
    done = subprocess.run(["dvc", "repro", "train"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DataError(f"`dvc repro train` failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    got = file_md5(lineage.MODEL)
    if got != expected:
        raise DataError(
            f"reproducing the committed model gave md5 {got}; dvc.lock records {expected}. "
            "The production model cannot be rebuilt exactly: fix the pipeline first."
        )
    shutil.copy2(lineage.MODEL, out / "model.joblib")
    cached = "is cached" in done.stdout
    rows = len(read_source(params.ingest.source, params.ingest.sep))
    start = params.ingest.start
    stop = min(rows, params.ingest.stop or rows)
    return {
        "source": f"the model dvc.lock records at commit {lineage.commit()[:12]} "
        f"({'restored from the DVC cache' if cached else 'reproduced, md5 checked'})",
        "train_rows": training_rows(start, stop - start, params),
    }


def compare(
    production: Any, candidate: Any, holdout: pd.DataFrame, params: Params, info: dict[str, Any],
    drift: bool,
) -> dict[str, Any]:  # fmt: skip
    """Both models on the same holdout, and whether the retrained one becomes a pull request."""
    y = labels(holdout, params).to_numpy()
    metrics = {
        "production": compute_metrics(y, score(production, holdout), params),
        "retrained": compute_metrics(y, score(candidate, holdout), params),
    }
    gain = metrics["retrained"]["roc_auc"] - metrics["production"]["roc_auc"]
    seq = holdout[params.base.time_column]
    train_rows = info.get("train_rows")
    overlap = None
    if train_rows:
        overlap = int(((seq >= train_rows[0]) & (seq < train_rows[1])).sum())
    wins = gain >= params.retrain.min_gain
    reasons = ([f"ROC AUC gain {gain:+.3f} >= retrain.min_gain {params.retrain.min_gain}"]
               if wins else []) + (["the monitor found drift"] if drift else [])  # fmt: skip
    return {
        "open_pr": wins or drift, "reasons": reasons, "gain": gain, "drift": drift,
        "holdout": {"rows": len(holdout), "start": int(seq.min()), "stop": int(seq.max()) + 1,
                    "overlap_with_production_training": overlap},
        "production": info, "metrics": metrics,
    }  # fmt: skip


def to_markdown(result: dict[str, Any], window: dict[str, Any] | None, monitor: str) -> str:
    """The pull request's body: decision, windows, both models on the holdout, drift report."""
    h, m = result["holdout"], result["metrics"]
    verdict = "; ".join(result["reasons"]) or f"no gain ({result['gain']:+.3f}) and no drift"
    lines = [
        "## Scheduled retraining", "",
        f"**{'Pull request opened' if result['open_pr'] else 'No pull request'}: {verdict}.**", "",
        "Nothing is deployed: merging this pull request is the approval, and the merge workflow "
        "ships the model. CI reproduces the pipeline and applies the gate as for any change.", "",
    ]  # fmt: skip
    if window:
        lines.append(
            f"- Training data: the newest {window['source_rows'] - window['start']:,} of "
            f"{window['source_rows']:,} source rows (`ingest.start: {window['start']}`); the "
            f"drift reference moves to its training part, rows [{window['reference'][0]}, "
            f"{window['reference'][1]})."
        )
    lines += [
        f"- Holdout: the new test split, source rows [{h['start']}, {h['stop']}) "
        f"({h['rows']:,} rows), scored by both models.",
        f"- Production model: {result['production']['source']}.",
    ]
    if h["overlap_with_production_training"] is None:
        lines.append(
            "- The production model's training rows are unknown: the holdout may flatter it."
        )
    elif h["overlap_with_production_training"]:
        lines.append(
            f"- {h['overlap_with_production_training']:,} holdout rows are in the production "
            "model's training data: the comparison flatters it."
        )
    lines += ["", "| metric | production | retrained | change |", "|---|---:|---:|---:|"]
    for key in SHOWN:
        old, new = m["production"][key], m["retrained"][key]
        digits = 0 if key.startswith("profit") else 4
        lines.append(
            f"| {key} | {old:,.{digits}f} | {new:,.{digits}f} | {new - old:+,.{digits}f} |"
        )
    lines.append(f"\nPositive rate of the holdout: {m['retrained']['positive_rate']:.1%}.")
    if monitor:
        lines += ["", monitor.replace("## Drift monitor", "### Drift of the newest data")]
    return "\n".join(lines) + "\n"


def github_output(**values: Any) -> None:
    for key, value in values.items():
        print(f"{key}={value}")
    if os.environ.get("GITHUB_OUTPUT"):
        with Path(os.environ["GITHUB_OUTPUT"]).open("a", encoding="utf-8") as fh:
            fh.writelines(f"{key}={value}\n" for key, value in values.items())


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    production = sub.add_parser("production", help="fetch the production model")
    production.add_argument("--out", required=True)
    window = sub.add_parser("window", help="move the ingest window to the newest rows")
    window.add_argument("--out", help="where to record the move (JSON)")
    comparison = sub.add_parser("compare", help="production vs retrained on the holdout")
    for name in ("production", "candidate", "holdout", "out"):
        comparison.add_argument(f"--{name}", required=True)
    comparison.add_argument("--drift", default="false", help="true when drift was found")
    comparison.add_argument("--monitor", help="the monitor's Markdown report, for the body")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    if args.command == "window":
        moved = move_window(args.params)
        if args.out:
            write_json(moved, args.out)
        log.info("ingest window moved to the newest rows: %s", moved)
    elif args.command == "production":
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        name = lineage.model_name(params)
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            # An unset repository variable arrives as an empty string: use the local default.
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        info = (from_registry(name, out) if os.environ.get("MLFLOW_TRACKING_URI") else None) or (
            from_lock(params, out)
        )
        info["md5"] = file_md5(out / "model.joblib")
        write_json(info, out / "production.json")
        log.info("production model: %s", info["source"])
    else:
        source = Path(args.production)
        info = read_json(source / "production.json")
        drift = args.drift.strip().lower() == "true"
        result = compare(load_model(source / "model.joblib"), load_model(args.candidate),
                         read_parquet(args.holdout), params, info, drift)  # fmt: skip
        out = Path(args.out)
        moved = out / "window.json"
        window = read_json(moved) if moved.is_file() else None
        monitor = ""
        if args.monitor:
            if not Path(args.monitor).is_file():
                raise DataError(f"{args.monitor}: no monitor report; run `make monitor` first.")
            text = Path(args.monitor).read_text(encoding="utf-8")
            # Its plots are files of this run, not of the pull request: leave them out.
            monitor = "\n".join(s for s in text.splitlines() if not s.startswith("!["))
        write_json(result, out / "comparison.json")
        with atomic_open(out / "body.md") as fh:
            fh.write(to_markdown(result, window, monitor))
        github_output(open_pr=str(result["open_pr"]).lower())


if __name__ == "__main__":
    cli.run(main)
