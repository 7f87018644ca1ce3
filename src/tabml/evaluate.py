"""Stage `evaluate`: metrics and plot data on the validation and test sets.

    python -m tabml.evaluate --model models/model.joblib --valid VALID.parquet \
        --test TEST.parquet --metrics reports/metrics.json --plots reports/plots
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline

from tabml import cli, tracking
from tabml.io import atomic_dir, file_md5, read_parquet, write_json
from tabml.params import Params, load_params
from tabml.predict import decide, labels, load_model, score

log = logging.getLogger(__name__)

GRID = np.linspace(0, 1, 101)  # curves are sampled on a fixed grid: small files, clean diffs
CALIBRATION_BINS = 10


def profit(y: np.ndarray, proba: np.ndarray, params: Params) -> dict[str, float]:
    """Profit of acting on the top-k share of rows by score, and on as many at random; none
    when `evaluate.value_per_positive` is 0 (no business value declared)."""
    cfg = params.evaluate
    if not cfg.value_per_positive:
        return {}
    actions = math.ceil(cfg.top_k * len(y))
    top = np.argsort(-proba, kind="stable")[:actions]
    per_action = cfg.value_per_positive * y.mean() - cfg.cost_per_action
    return {
        "profit_top_k": float(
            cfg.value_per_positive * y[top].sum() - cfg.cost_per_action * actions
        ),
        "profit_random_k": float(per_action * actions),
    }


def compute_metrics(y: np.ndarray, proba: np.ndarray, params: Params) -> dict[str, float]:
    """Ranking, probability and decision metrics, plus the business metric."""
    decision = decide(proba, params.base.threshold)
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y, decision, average="binary", zero_division=0
    )
    return {
        "rows": len(y),
        "positive_rate": float(y.mean()),
        "roc_auc": float(skm.roc_auc_score(y, proba)),
        "pr_auc": float(skm.average_precision_score(y, proba)),
        "log_loss": float(skm.log_loss(y, proba, labels=[0, 1])),
        "brier": float(skm.brier_score_loss(y, proba)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        **profit(y, proba, params),
    }


def records(**columns: Any) -> list[dict[str, float]]:
    return pd.DataFrame(columns).round(5).to_dict("records")


def curves(y: np.ndarray, proba: np.ndarray) -> dict[str, list[dict[str, float]]]:
    """ROC, precision-recall, calibration and cumulative gain, as DVC plot records."""
    fpr, tpr, _ = skm.roc_curve(y, proba)
    precision, recall, _ = skm.precision_recall_curve(y, proba)
    # precision_recall_curve returns recall in decreasing order; np.interp needs increasing x.
    pr = np.interp(GRID, recall[::-1], precision[::-1])
    found = np.cumsum(y[np.argsort(-proba, kind="stable")]) / max(y.sum(), 1)
    gain = np.interp(GRID, np.arange(1, len(y) + 1) / len(y), found, left=0.0)
    observed, predicted = calibration_curve(y, proba, n_bins=CALIBRATION_BINS, strategy="quantile")

    return {
        "roc": records(fpr=GRID, tpr=np.interp(GRID, fpr, tpr)),
        "precision_recall": records(recall=GRID, precision=pr),
        "calibration": records(mean_predicted=predicted, fraction_positive=observed),
        "gain": records(share_called=GRID, share_positives_found=gain),
    }


def evaluate(model: Pipeline, splits: dict[str, pd.DataFrame], params: Params):
    """Metrics for every split; plot records per split, plus confusion and importance on test."""
    metrics, plots = {}, {}
    for name, frame in splits.items():
        y, proba = labels(frame, params).to_numpy(), score(model, frame)
        metrics[name] = compute_metrics(y, proba, params)
        plots.update({f"{kind}_{name}": rows for kind, rows in curves(y, proba).items()})
    test = splits["test"]
    y_test = labels(test, params).to_numpy()
    decision = decide(score(model, test), params.base.threshold)
    plots["confusion_test"] = [
        {"actual": int(a), "predicted": int(p)} for a, p in zip(y_test, decision, strict=True)
    ]
    features = list(model.feature_names_in_)
    importance = permutation_importance(
        model,
        test[features],
        y_test,
        scoring="roc_auc",
        n_repeats=params.evaluate.permutation_repeats,
        random_state=params.base.seed,
        n_jobs=1,
        # Each repeat scores the split once per feature: a sample ranks them as well.
        max_samples=min(1.0, params.evaluate.permutation_max_rows / len(test)),
    )
    order = np.argsort(-importance.importances_mean, kind="stable")
    plots["importance_test"] = [
        {"feature": features[i], "importance": round(float(importance.importances_mean[i]), 5)}
        for i in order
    ]
    return metrics, plots


def log_to_mlflow(
    metrics: dict, model_path: str, metrics_path: str, plots_dir: str, params: Params
) -> None:
    """Add the metrics to the MLflow run that logged this exact model file."""
    import mlflow

    tracking.configure(params.tracking)
    model_md5 = file_md5(model_path)
    run = tracking.find_run(model_md5)
    if run is None:
        log.warning("no MLflow run logged model %s; starting one for its metrics", model_md5)
    run_id = run.info.run_id if run else None
    with mlflow.start_run(run_id=run_id, tags={tracking.MODEL_HASH_TAG: model_md5}):
        mlflow.log_metrics(
            {f"{s}_{k}": v for s, values in metrics.items() for k, v in values.items()}
        )
        mlflow.log_artifact(metrics_path)
        mlflow.log_artifacts(plots_dir, artifact_path="plots")


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    for name in ("model", "valid", "test", "metrics", "plots"):
        ap.add_argument(f"--{name}", required=True)
    args = ap.parse_args(argv)
    params = load_params(args.params)
    tracking.configure(params.tracking)  # an unreachable server stops here, before any output
    model = load_model(args.model)
    splits = {"valid": read_parquet(args.valid), "test": read_parquet(args.test)}
    metrics, plots = evaluate(model, splits, params)
    with atomic_dir(args.plots) as tmp:
        for name, rows in plots.items():
            write_json(rows, tmp / f"{name}.json")
    write_json(metrics, args.metrics)
    log.info(
        "test ROC AUC %.4f; wrote %s and %s", metrics["test"]["roc_auc"], args.metrics, args.plots
    )
    log_to_mlflow(metrics, args.model, args.metrics, args.plots, params)


if __name__ == "__main__":
    cli.run(main)
