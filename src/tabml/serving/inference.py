"""Scoring the fitted pipeline: compiled to ONNX when it converts exactly, scikit-learn otherwise.

The scikit-learn pipeline spends about 5 ms of a one-row `predict_proba` building and
transforming a DataFrame; the same graph in onnxruntime takes well under 0.1 ms and takes plain
columns, so a request never builds a DataFrame. The compiled graph is used only if it gives the
pipeline's probabilities on held-out data within `TOLERANCE`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # scikit-learn loads only where the pipeline itself is used: faster start-up
    from sklearn.pipeline import Pipeline

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
SKLEARN_FILE = "model.joblib"
TOLERANCE = 1e-6  # largest accepted |p_onnx - p_sklearn|


def is_numeric(frame: pd.DataFrame, column: str) -> bool:
    # pandas 3 gives text columns a `str` dtype, not `object`: ask for numbers instead.
    return pd.api.types.is_numeric_dtype(frame[column])


def compile_onnx(pipeline: Pipeline, sample: pd.DataFrame) -> bytes:
    """The pipeline as an ONNX graph: one (n, 1) input per feature, float32 or string."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    features = list(pipeline.feature_names_in_)
    types = [
        (c, FloatTensorType([None, 1]) if is_numeric(sample, c) else StringTensorType([None, 1]))
        for c in features
    ]
    # zipmap off: probabilities come back as one (n, 2) array, not a list of dicts.
    options = {id(pipeline.steps[-1][1]): {"zipmap": False}}
    return to_onnx(pipeline, initial_types=types, options=options).SerializeToString()


def to_columns(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """A frame as plain column lists, the form requests arrive in."""
    return {c: frame[c].tolist() for c in frame.columns}


class OnnxScorer:
    """The compiled pipeline in onnxruntime, one thread per worker process."""

    runtime = "onnx"

    def __init__(self, model: bytes | str | Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # Workers are processes: one thread each avoids oversubscribing the cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.features = [i.name for i in self.session.get_inputs()]
        self.dtypes = {
            i.name: np.float32 if i.type == "tensor(float)" else object
            for i in self.session.get_inputs()
        }
        self.output = self.session.get_outputs()[-1].name  # probabilities, after the label

    def score(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        feed = {
            c: np.asarray(columns[c], dtype=self.dtypes[c]).reshape(-1, 1) for c in self.features
        }
        return self.session.run([self.output], feed)[0][:, 1].astype(np.float64)


class SklearnScorer:
    """The pipeline itself, for estimators the ONNX converters do not cover."""

    runtime = "sklearn"

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.features = list(pipeline.feature_names_in_)

    def score(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        frame = pd.DataFrame({c: columns[c] for c in self.features})
        return self.pipeline.predict_proba(frame)[:, 1]


def max_difference(scorer: OnnxScorer, pipeline: Pipeline, frame: pd.DataFrame) -> float:
    """Largest |compiled - pipeline| probability over the rows of `frame`."""
    expected = pipeline.predict_proba(frame[list(pipeline.feature_names_in_)])[:, 1]
    return float(np.abs(scorer.score(to_columns(frame)) - expected).max())


def with_gaps(frame: pd.DataFrame, nullable: Sequence[str]) -> pd.DataFrame:
    """`frame`, then a copy of it with every third value of each `nullable` column missing."""
    columns = [c for c in nullable if c in frame.columns]
    if not columns:
        return frame
    gaps = frame.copy()
    for column in columns:
        gaps.loc[gaps.index[::3], column] = None
    return pd.concat([frame, gaps], ignore_index=True)


def export(
    pipeline: Pipeline, holdout: pd.DataFrame, directory: Path, nullable: Sequence[str] = ()
) -> dict[str, Any]:
    """Write the pipeline, and its ONNX graph if it matches on `holdout`; return the facts.

    The graph must also match where the `nullable` features (the schema lets requests leave
    them out as null) are missing; where it cannot, the service runs scikit-learn.
    """
    import joblib

    joblib.dump(pipeline, directory / SKLEARN_FILE)
    probe = with_gaps(holdout, nullable)
    try:
        graph = compile_onnx(pipeline, holdout)
        difference = max_difference(OnnxScorer(graph), pipeline, probe)
    except Exception as exc:  # any converter gap means: serve the pipeline as it is
        log.warning("ONNX conversion failed (%s); the service will run scikit-learn", exc)
        return {"runtime": "sklearn", "onnx_max_abs_diff": None}
    if difference > TOLERANCE:
        log.warning(
            "ONNX differs by %.2g > %g; the service will run scikit-learn", difference, TOLERANCE
        )
        return {"runtime": "sklearn", "onnx_max_abs_diff": difference}
    (directory / ONNX_FILE).write_bytes(graph)
    log.info("ONNX graph matches the pipeline within %.2g on %d rows", difference, len(probe))
    return {"runtime": "onnx", "onnx_max_abs_diff": difference}


def load_scorer(directory: Path, runtime: str) -> OnnxScorer | SklearnScorer:
    """The scorer that `export` chose for this model directory."""
    if runtime == "onnx":
        return OnnxScorer(directory / ONNX_FILE)
    import joblib

    return SklearnScorer(joblib.load(directory / SKLEARN_FILE))
