"""What the service does per request, kept out of `service.py` so that file stays a summary.

`Settings` are the bento's arguments (`bentoml build/serve --arg key=value`, set from the
`serve` section of `params.yaml` by `python -m tabml.bento`); `Engine` scores, logs and counts.
"""

from __future__ import annotations

import json
import logging
import operator
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, field_validator

from tabml.serving import observe
from tabml.serving.contract import BatchPrediction, Identity, Prediction, request_model
from tabml.serving.inference import load_scorer
from tabml.serving.predlog import PredictionLog

log = logging.getLogger(__name__)

# Where the bento runs decides where its log goes: these override the bento's arguments.
LOG_DIR_ENV = "TABML_PREDICTION_LOG"
LOG_ROTATE_ENV = "TABML_PREDICTION_LOG_ROTATE_SECONDS"


class Settings(BaseModel):
    """The bento's arguments."""

    model_tag: str = Field(description="exact BentoML model tag, name:version")
    max_batch: int = Field(10_000, ge=1)
    max_body_mb: float = Field(16.0, gt=0)
    workers: int = Field(2, ge=1)
    prediction_log: str = "logs/predictions"
    log_rotate_mb: float = Field(64.0, gt=0)
    log_rotate_seconds: float = Field(3600.0, gt=0)

    @field_validator("model_tag")
    @classmethod
    def _exact(cls, tag: str) -> str:
        name, _, version = tag.partition(":")
        if not name or not version or version == "latest":
            raise ValueError(f"model_tag must be an exact 'name:version' tag, not '{tag}'")
        return tag


def stored_model(tag: str) -> Any:
    """The model in the BentoML store, with a message that says how to put it there."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return bentoml.models.get(tag)
    except NotFound:
        raise LookupError(f"model {tag} is not in the BentoML store; run `make bento`") from None


def client_model(tag: str) -> type:
    """The request model of one client, from the features recorded with the model."""
    metadata = stored_model(tag).info.metadata
    example = json.loads(metadata["example"]) if "example" in metadata else None
    return request_model(metadata["features"], example=example)


def closed_input(**fields: Any) -> type:
    """An endpoint's request body with `fields` and no other top-level field.

    BentoML's default body ignores a field it does not know, so `{"client": ..., "clinet": ...}`
    would be scored as if nothing were wrong.
    """
    import bentoml
    from pydantic import ConfigDict, create_model

    class ClosedInput(bentoml.IODescriptor):
        model_config = ConfigDict(extra="forbid")

    return create_model(
        "Input", __base__=ClosedInput, **{name: (kind, ...) for name, kind in fields.items()}
    )


class Engine:
    """Scores clients with the stored model, logs each scored record and counts them."""

    def __init__(self, model: Any, settings: Settings) -> None:
        meta = model.info.metadata
        self.tag = str(model.tag)
        self.threshold = float(meta["threshold"])
        self.features: list[str] = list(meta["features"])
        self.scorer = load_scorer(Path(model.path), meta["runtime"])
        observe.quiet_refusals()
        getter = operator.itemgetter(*self.features)
        self._values = getter if len(self.features) > 1 else lambda r: (getter(r),)
        self.identity = Identity(
            model_name=model.tag.name,
            model_version=model.tag.version,
            model_tag=self.tag,
            runtime=self.scorer.runtime,
            threshold=self.threshold,
            features=self.features,
            **{k: meta.get(k) for k in ("mlflow_run_id", "git_commit", "git_dirty")},
            data=meta.get("data", {}),
            metrics=meta.get("metrics", {}),
        )
        metrics = observe.metrics()
        metrics["info"].labels(
            self.tag,
            self.scorer.runtime,
            meta.get("mlflow_run_id") or "",
            meta.get("git_commit") or "",
        ).set(1)
        self.log = PredictionLog(
            os.environ.get(LOG_DIR_ENV, settings.prediction_log),
            self.features,
            rotate_bytes=int(settings.log_rotate_mb * (1 << 20)),
            rotate_seconds=float(os.environ.get(LOG_ROTATE_ENV, settings.log_rotate_seconds)),
            on_drop=metrics["dropped"].inc,
        )

    def _score(self, records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        # One C-level pass per record, then a transpose: several times faster than a lookup
        # per value in Python.
        rows = map(self._values, records)
        columns = dict(zip(self.features, map(list, zip(*rows, strict=True)), strict=True))
        probabilities = self.scorer.score(columns)
        decisions = probabilities >= self.threshold
        observe.observe(probabilities, decisions)
        self.log.write(columns, probabilities, decisions, self.tag)
        return probabilities, decisions

    def score_one(self, record: Mapping[str, Any]) -> Prediction:
        probabilities, decisions = self._score([record])
        return Prediction(
            probability=float(probabilities[0]),
            decision=bool(decisions[0]),
            model_version=self.tag,
            threshold=self.threshold,
        )

    def score_batch(self, records: Sequence[Mapping[str, Any]]) -> BatchPrediction:
        probabilities, decisions = self._score(records)
        return BatchPrediction.model_construct(  # values are ours: skip validation
            model_version=self.tag,
            threshold=self.threshold,
            probabilities=probabilities.tolist(),
            decisions=decisions.tolist(),
        )

    def close(self) -> None:
        self.log.close()
