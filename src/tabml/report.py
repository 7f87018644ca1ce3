"""The pull-request report: what a change does to the data and the model, in one markdown file.

    python -m tabml.report --base REF --out build/report [--metrics M] [--validation V] \
        [--summary S]

The metrics and the validation report and summary default to params.yaml's `paths.metrics`,
`paths.validation_report` and `paths.validation_summary`.

Writes `report.md` (under GitHub's comment limit, truncated with a pointer to the artifact),
`report-full.md`, `plots/*.png` (both revisions in each plot, rendered offline from DVC's
Vega-Lite specs) and `pr.json` (the pull request the report belongs to). `tabml.report_data`
collects what the report shows; this module renders it.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tabml import cli, gate, lineage
from tabml.params import load_params
from tabml.report_data import (
    Production,
    ReportData,
    ReportInputs,
    Validation,
    collect,
    mlflow_production,
    read_validation,
)

log = logging.getLogger(__name__)

COMMENT_LIMIT = 65_536  # GitHub's limit on a comment's body, in characters
MARGIN = 1_024  # room for the marker CML adds to the comment it posts
HEAD_LABEL = "this change"


def diff_table(text: str, base: str, base_label: str, empty: str) -> str:
    """A `dvc ... diff --md` table with readable revision names; `empty` when it has no rows."""
    if len([line for line in text.splitlines() if line.startswith("|")]) <= 2:
        return empty if text.startswith("|") or not text.strip() else text
    return text.replace(base, base_label).replace("workspace", HEAD_LABEL)


def clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def validation_markdown(validation: Validation) -> tuple[bool, str]:
    """Whether validation passed, and its markdown summary verbatim."""
    report, summary = validation.report, validation.summary
    if report is None:
        return False, (
            f"No validation report (`{validation.path}`): the pipeline stopped before it.\n"
        )
    failures = report.get("failures") or []
    if report.get("passed"):
        return True, summary
    checks = ", ".join(f"`{f.get('column')}`: `{clip(str(f.get('check')))}`" for f in failures)
    lead = f"**Data validation failed** ({len(failures)} failing checks: {checks}).\n\n"
    return False, lead + summary


def validation_section(report_path: Path, summary_path: Path) -> tuple[bool, str]:
    """Whether validation passed, and its summary, from the validation files."""
    return validation_markdown(read_validation(report_path, summary_path))


def relabel(node: Any, names: dict[str, str]) -> Any:
    """Replace DVC's revision names in a Vega-Lite spec by readable ones."""
    if isinstance(node, dict):
        return {key: relabel(value, names) for key, value in node.items()}
    if isinstance(node, list):
        return [relabel(value, names) for value in node]
    return names.get(node, node) if isinstance(node, str) else node


def write_plots(
    plots: list[tuple[str, dict[str, Any]]], base: str, base_label: str, out: Path
) -> list[tuple[str, str]]:
    """Render each plot to PNG under `out/plots` with readable revisions; (title, path) pairs."""
    import vl_convert

    names = {"workspace": HEAD_LABEL, base: base_label}
    images = []
    (out / "plots").mkdir(parents=True, exist_ok=True)
    for title, spec in plots:
        name = "plots/" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") + ".png"
        png = vl_convert.vegalite_to_png(relabel(spec, names), scale=1)
        (out / name).write_bytes(png)
        images.append((title, name))
    return images


def production_markdown(metrics: dict, production: Production) -> str:
    """Metrics of this change next to those of the model behind the `production` alias."""
    uri, model_name = production.uri, production.model_name
    if production.status == "fork":
        return (
            "This pull request comes from a fork, and GitHub gives a fork's pull request no "
            "repository variables, so this report cannot see the MLflow tracking server "
            "(`MLFLOW_TRACKING_URI`): there is no comparison with the production model.\n"
        )
    if production.status == "no-server":
        return (
            "No MLflow tracking server is configured (`MLFLOW_TRACKING_URI` is not an http(s) "
            "URL), so there is no comparison with the production model.\n"
        )
    if production.status == "error":
        return (
            f"No comparison with `{model_name}@{lineage.PRODUCTION}` at {uri}: "
            f"{production.error}\n"
        )
    lines = [
        f"Model `{model_name}` version {production.version} (alias `{lineage.PRODUCTION}`, "
        f"run `{production.run_id}`) at {uri}:",
        "",
        f"| metric | production | {HEAD_LABEL} | change |",
        "|---|---:|---:|---:|",
    ]
    for split, values in metrics.items():
        for name, value in values.items():
            before = production.metrics.get(f"{split}_{name}")
            if before is None or not isinstance(value, int | float):
                continue
            delta = float(value) - before
            lines.append(f"| {split}.{name} | {before:.4f} | {value:.4f} | {delta:+.4f} |")
    return "\n".join(lines) + "\n"


def production_section(metrics: dict, model_name: str, from_fork: bool = False) -> str:
    """The production comparison, asking the tracking server `MLFLOW_TRACKING_URI` names."""
    return production_markdown(metrics, mlflow_production(model_name, from_fork))


def truncate(text: str, limit: int, pointer: str) -> str:
    """Cut `text` at a line boundary so that it and `pointer` fit in `limit` characters."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit - len(pointer) - 2)
    return text[: max(cut, 0)] + "\n\n" + pointer


def render(data: ReportData, out: Path) -> str:
    """The whole report as markdown; plot images are written under `out`."""
    base = data.base
    valid, validation = validation_markdown(data.validation)
    failed = [v for v in data.verdicts if not v.passed]
    pipeline = data.pipeline_result or "not reported"
    finished = pipeline in ("success", "not reported")
    base_label = f"base {base[:7]}" if base else "base"
    if data.unknown_base:
        gate_line = "**error**: the base revision does not resolve (see the warning above)"
    elif not finished:
        gate_line = "**not run** (the pipeline did not finish)"
    elif failed:
        gate_line = "**FAILED** (" + ", ".join(f"`{v.metric}` {v.rule}" for v in failed) + ")"
    else:
        gate_line = "**passed**"
    status = [
        f"- Pipeline (validate, reproduce, lock check): **{pipeline}**",
        f"- Data validation: **{'passed' if valid else 'FAILED'}**",
        f"- Gate: {gate_line}",
    ]
    parts = [f"## Model report: {HEAD_LABEL} vs {base_label}", ""]
    if data.unknown_base:  # on top: a report that compares nothing must not look like a pass
        parts += [f"> **Warning:** {data.unknown_base} Nothing below is compared with it.", ""]
    parts += [*status, ""]
    if not finished:
        parts += [
            "> The pipeline did not finish: the job log says which step failed and what to run. "
            "Metrics below may be the ones committed on this branch rather than reproduced.",
            "",
        ]
    # The gate comes first: a long validation table must not push it past the comment limit.
    gate_text = gate.to_markdown(data.verdicts) if finished else "The gate did not run.\n"
    parts += ["### Gate", "", gate_text]
    if data.rules_edited:
        parts += [
            "This change edits the `gate` rules in params.yaml: the base's rules judged it, "
            "the new ones apply once it is merged.",
            "",
        ]
    parts += ["### Data validation", "", validation]
    if base:
        metrics_diff = diff_table(data.metrics_diff, base, base_label, "No metric changed.\n")
        params_diff = diff_table(data.params_diff, base, base_label, "No parameter changed.\n")
        parts += ["### Metrics", "", metrics_diff, "### Parameters", "", params_diff]
    else:
        missing = "The base revision does not resolve (see the warning on top).\n"
        given = missing if data.unknown_base else None
        parts += ["### Metrics", "", given or "No base revision given: nothing to compare with.\n"]
    production = production_markdown(data.metrics, data.production)
    parts += ["### Against production", "", production]
    images = write_plots(data.plots, base, base_label, out) if data.plots is not None else []
    if images:
        parts += ["### Plots", "", f"Each plot shows {base_label} and {HEAD_LABEL}.", ""]
        parts += [f"![{title}]({path})\n" for title, path in images]
    return "\n".join(parts)


def build(inputs: ReportInputs, out: Path) -> str:
    """The whole report as markdown, collected then rendered; plot images go under `out`."""
    return render(collect(inputs), out)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="", help="git revision to compare with (empty: none)")
    ap.add_argument("--out", required=True, help="directory to write the report into")
    ap.add_argument("--metrics", help="default: paths.metrics")
    ap.add_argument("--validation", help="validation JSON; default: paths.validation_report")
    ap.add_argument("--summary", help="validation markdown; default: paths.validation_summary")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--pipeline-result", default="", help="result of the pipeline job")
    ap.add_argument("--pr-number", default="", help="pull request number, for the comment")
    ap.add_argument("--head-sha", default="", help="commit the pull request's run tested")
    ap.add_argument("--run-url", default="", help="page of the run that holds the artifact")
    ap.add_argument(
        "--from-fork", action="store_true", help="the pull request comes from another repository"
    )
    args = ap.parse_args(argv)
    paths = load_params(args.params).paths
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    inputs = ReportInputs(
        base=args.base,
        metrics=args.metrics or paths.metrics,
        validation=args.validation or paths.validation_report,
        summary=args.summary or paths.validation_summary,
        params=args.params, pipeline_result=args.pipeline_result, from_fork=args.from_fork,
    )  # fmt: skip
    text = build(inputs, out)
    where = f"[this run]({args.run_url})" if args.run_url else "this run"
    pointer = f"_Truncated: the full report is `report-full.md` in the artifact of {where}._"
    (out / "report-full.md").write_text(text, encoding="utf-8")
    (out / "report.md").write_text(truncate(text, COMMENT_LIMIT - MARGIN, pointer), "utf-8")
    if args.pr_number:
        pr = {"number": int(args.pr_number), "head_sha": args.head_sha}
        (out / "pr.json").write_text(json.dumps(pr) + "\n", encoding="utf-8")
    log.info("wrote %s (%d characters)", out / "report.md", len(text))


if __name__ == "__main__":
    cli.run(main)
