"""What the pull-request report shows, collected; `tabml.report` renders it as markdown.

Collecting asks git (through the gate), `dvc metrics/params/plots diff`, the validation files and
the MLflow tracking server. A failed dvc call or an unreachable server becomes a readable line or
an empty part, never an exception: the report must still be posted.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from tabml import commands, gate, lineage, tracking
from tabml.params import TrackingParams, load_params

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportInputs:
    """What the report is about. Paths as given: the gate reads them at the base revision too."""

    base: str  # git revision to compare with; empty: none
    metrics: str
    validation: str
    summary: str
    params: str = "params.yaml"
    pipeline_result: str = ""  # result of the pipeline job; empty: not reported
    from_fork: bool = False


@dataclass(frozen=True)
class Validation:
    """The validation report (None when there is none) and its markdown summary."""

    path: Path
    report: dict[str, Any] | None
    summary: str


@dataclass(frozen=True)
class Production:
    """The model behind the `production` alias on the tracking server, or why it is unknown."""

    uri: str
    model_name: str
    status: Literal["ok", "fork", "no-server", "error"]
    error: str = ""  # first line of the error, for status "error"
    version: str = ""
    run_id: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, collected."""

    base: str | None
    unknown_base: str | None  # why a named base does not resolve
    pipeline_result: str
    validation: Validation
    verdicts: list[gate.Verdict]
    rules_edited: bool  # the change edits the gate rules the base's rules judged it by
    metrics_diff: str  # `dvc metrics diff --md` output (or its failure); empty without a base
    params_diff: str
    metrics: dict[str, Any]
    production: Production
    # (title, Vega-Lite spec) pairs; None without a base or when `dvc plots diff` failed
    plots: list[tuple[str, dict[str, Any]]] | None = None


def dvc(*args: str) -> str:
    """Standard output of a dvc command; its error message becomes a readable line instead."""
    done = commands.run("dvc", *args, check=False)
    if done.returncode != 0:
        return f"`dvc {' '.join(args)}` failed: {commands.last_line(done)}\n"
    return done.stdout


def read_validation(report_path: Path, summary_path: Path) -> Validation:
    """The validation report and summary; a missing report is recorded, not raised."""
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        report = None
    summary = summary_path.read_text(encoding="utf-8") if summary_path.exists() else ""
    return Validation(report_path, report, summary)


def plot_specs(base: str) -> list[tuple[str, dict[str, Any]]] | None:
    """Vega-Lite spec of each plot of `dvc.yaml` with both revisions, in `dvc.yaml`'s order."""
    with Path("dvc.yaml").open(encoding="utf-8") as fh:
        titles = [next(iter(plot)) for plot in yaml.safe_load(fh).get("plots", [])]
    done = commands.run("dvc", "plots", "diff", base, "--json", check=False)
    if done.returncode != 0:
        log.warning("dvc plots diff failed: %s", done.stderr.strip())
        return None
    specs = json.loads(done.stdout).get("data", {})
    return [
        (title, entry["content"])
        for title in titles
        for entry in specs.get(title, [])
        if entry.get("type") == "vega"
    ]


def mlflow_production(
    model_name: str, from_fork: bool = False, settings: TrackingParams | None = None
) -> Production:
    """The `production` model's version and run metrics on the tracking server, if reachable."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri.startswith(("http://", "https://")):
        # GitHub gives a fork's pull request no repository variables: the server may well exist.
        return Production(uri, model_name, "fork" if from_fork else "no-server")
    settings = settings or TrackingParams()
    tracking.limit_requests(settings)
    problem = tracking.unanswered(uri, settings)
    if problem:
        log.warning("the MLflow tracking server %s (MLFLOW_TRACKING_URI) %s", uri, problem)
        return Production(uri, model_name, "error", error=f"the server {problem}")
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(uri)
        version = client.get_model_version_by_alias(model_name, lineage.PRODUCTION)
        known = client.get_run(version.run_id).data.metrics
    except Exception as exc:  # the server is outside this repository: report, never crash
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Production(uri, model_name, "error", error=first)
    return Production(
        uri, model_name, "ok", version=str(version.version), run_id=version.run_id,
        metrics=dict(known),
    )  # fmt: skip


def collect(inputs: ReportInputs) -> ReportData:
    """Ask git, dvc, the files and MLflow for what the report shows."""
    try:
        base, unknown = gate.resolve(inputs.base), None
    except gate.UnknownBaseError as exc:
        base, unknown = None, str(exc)
        log.warning("%s Reporting without a comparison.", exc)
    validation = read_validation(Path(inputs.validation), Path(inputs.summary))
    verdicts, rules = gate.evaluate_gate(base, inputs.metrics, inputs.params)
    params = load_params(inputs.params)
    metrics_diff = dvc("metrics", "diff", base, "--md") if base else ""
    params_diff = dvc("params", "diff", base, "--md") if base else ""
    metrics = json.loads(Path(inputs.metrics).read_text(encoding="utf-8"))
    production = mlflow_production(lineage.model_name(params), inputs.from_fork, params.tracking)
    return ReportData(
        base=base, unknown_base=unknown, pipeline_result=inputs.pipeline_result,
        validation=validation, verdicts=verdicts, rules_edited=params.gate != rules,
        metrics_diff=metrics_diff, params_diff=params_diff, metrics=metrics,
        production=production, plots=plot_specs(base) if base else None,
    )  # fmt: skip
