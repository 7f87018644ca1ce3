"""Stage `train`: fit the scikit-learn pipeline and log the run to MLflow.

python -m tabml.train --train TRAIN.parquet --valid VALID.parquet --model models/model.joblib
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import joblib
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tabml import cli, lineage, tracking
from tabml.dataset import feature_columns
from tabml.estimators import ESTIMATORS, NATIVE_MISSING
from tabml.io import DataError, atomic_path, file_md5, read_parquet
from tabml.params import Params, load_params
from tabml.predict import labels, score

log = logging.getLogger(__name__)

TRAIN_SCORED_ROWS = 50_000

# Types the skops format (MLflow's safe default for scikit-learn) must be told to load: the
# fitted trees of HistGradientBoosting. We trust them because this pipeline wrote them.
SKOPS_TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


def build_pipeline(frame: pd.DataFrame, params: Params) -> Pipeline:
    """Scale numeric columns, one-hot encode the others, then the estimator from params.

    Missing values: a missing category is one more category; a missing number stays NaN for
    HistGradientBoosting (which learns where it goes) and is imputed with the median, with an
    indicator column, for the others.
    """
    name = params.train.estimator
    if name not in ESTIMATORS:
        raise DataError(f"train.estimator is '{name}'; expected one of {sorted(ESTIMATORS)}.")
    features = feature_columns(params)
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in features if c not in numeric]
    scale: Any = StandardScaler()  # keeps NaN as NaN
    if name not in NATIVE_MISSING:
        scale = Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True)),
                          ("scale", scale)])  # fmt: skip
    preprocess = ColumnTransformer(
        [
            ("num", scale, numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ]
    )
    settings: dict[str, Any] = dict(getattr(params.train, name))
    estimator = ESTIMATORS[name](**settings, random_state=params.base.seed)
    return Pipeline([("preprocess", preprocess), ("classifier", estimator)])


def fit(frame: pd.DataFrame, params: Params) -> Pipeline:
    """The pipeline of `params`, fitted on `frame`."""
    model = build_pipeline(frame, params)
    return model.fit(frame[feature_columns(params)], labels(frame, params))


def train(train: pd.DataFrame, valid: pd.DataFrame, params: Params) -> tuple[Pipeline, dict]:
    """Fit on `train`; return the model and its ROC AUC on train (at most TRAIN_SCORED_ROWS,
    evenly spaced: a diagnostic of fit, not worth scoring millions of rows) and validation."""
    model = fit(train, params)
    scored = train.iloc[:: max(1, len(train) // TRAIN_SCORED_ROWS)]
    metrics = {
        f"{name}_roc_auc": float(roc_auc_score(labels(part, params), score(model, part)))
        for name, part in (("train", scored), ("valid", valid))
    }
    return model, metrics


def flatten(params: Params) -> dict[str, Any]:
    """The params that shape the model, flattened for MLflow (`train.max_depth`, ...)."""
    flat: dict[str, Any] = {}
    for section in ("base", "split", "train"):
        for key, value in asdict(getattr(params, section)).items():
            if isinstance(value, dict):
                flat.update({f"{section}.{key}.{k}": v for k, v in value.items()})
            else:
                flat[f"{section}.{key}"] = value
    return flat


def log_run(
    model: Pipeline, metrics: dict, params: Params, example: pd.DataFrame, tags: dict[str, str]
) -> str:
    """Log params, metrics, lineage tags and the model (signature, input example) to MLflow."""
    import mlflow
    from mlflow.models import infer_signature

    tracking.configure(params.tracking)
    with warnings.catch_warnings():
        # MLflow warns that integer columns cannot hold missing values: only float ones can.
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer", UserWarning)
        signature = infer_signature(example, model.predict_proba(example))
    with mlflow.start_run(tags={**lineage.git_tags(), **tags}) as run:
        mlflow.log_params(flatten(params))
        mlflow.log_metrics(metrics)
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=example,
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
        )
    log.info("MLflow run %s in %s", run.info.run_id, mlflow.get_tracking_uri())
    return run.info.run_id


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    for name in ("train", "valid", "model"):
        ap.add_argument(f"--{name}", required=True)
    args = ap.parse_args(argv)
    params = load_params(args.params)
    tracking.configure(params.tracking)  # an unreachable server stops here, before any output
    train_frame, valid_frame = read_parquet(args.train), read_parquet(args.valid)
    model, metrics = train(train_frame, valid_frame, params)
    with atomic_path(args.model) as tmp:
        joblib.dump(model, tmp)
    log.info("wrote %s; %s", args.model, metrics)
    tags = {
        "data.train.md5": file_md5(args.train),
        "data.valid.md5": file_md5(args.valid),
        tracking.MODEL_HASH_TAG: file_md5(args.model),
    }
    example = train_frame.loc[:4, list(model.feature_names_in_)]
    log_run(model, metrics, params, example, tags)


if __name__ == "__main__":
    cli.run(main)
