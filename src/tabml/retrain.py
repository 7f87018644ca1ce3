"""Scheduled retraining, one subcommand per step of `.github/workflows/retrain.yml`.

    python -m tabml.retrain production --out build/retrain/production
    python -m tabml.retrain window
    python -m tabml.retrain compare --production build/retrain/production --out build/retrain \
        [--candidate M] [--holdout TEST.parquet] [--drift true]

`production` fetches the model in production before anything changes (`tabml.production_model`:
the MLflow alias, else the model `dvc.lock` records). `window` moves `ingest.start`/`stop` to
the newest `retrain.window_rows` rows of the source and the drift reference
(`drift.reference_*`) to their training part; `params.yaml` keeps its comments and key order.
`compare` scores both models on the new test split, the newest rows, and decides whether a pull
request is opened; the candidate and the holdout default to params.yaml's `paths.model` and
`paths.test`, what the pipeline just produced. The body names the retrained model as the shadow
for staging, with the commands that deploy it there beside the model in service.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from ruamel.yaml import YAML, CommentedMap
from ruamel.yaml.error import CommentMark
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.tokens import CommentToken
from ruamel.yaml.util import load_yaml_guess_indent

from tabml import cli, lineage, production_model
from tabml.evaluate import compute_metrics
from tabml.ingest import read_source
from tabml.io import DataError, atomic_open, read_json, read_parquet, write_json
from tabml.params import Params, load_params
from tabml.predict import labels, load_model, score
from tabml.production_model import training_rows

log = logging.getLogger(__name__)

SHOWN = ("roc_auc", "pr_auc", "log_loss", "brier", "profit_top_k")


class _Representer(RoundTripRepresenter):
    """Writes None as `null`, as params.yaml spells it, rather than as an empty value."""


_Representer.add_representer(
    type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
)


def _represent_float(rep: RoundTripRepresenter, value: float) -> Any:
    # YAML 1.1 (PyYAML, which load_params uses) reads `1e-06` as a string: write `1.0e-06`.
    mantissa, e, exponent = repr(value).partition("e")
    text = f"{mantissa}{'' if '.' in mantissa else '.0'}{e}{exponent}" if e else repr(value)
    return rep.represent_scalar("tag:yaml.org,2002:float", text)


_Representer.add_representer(float, _represent_float)


def set_param(text: str, section: str, key: str, value: Any, add: bool = False) -> str:
    """`params.yaml` text with `section.key` set to `value`; comments, order and layout kept.

    `section` may be dotted (`train.hist_gradient_boosting`); with `add`, a key the section
    lacks is appended to it.
    """
    yaml = YAML()  # round-trip: comments, key order and quotes survive
    yaml.Representer = _Representer
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line
    _, indent, offset = load_yaml_guess_indent(text)
    if offset is not None:  # the file has block sequences: indent them as it does
        yaml.indent(mapping=2, sequence=indent, offset=offset)
    data = block = yaml.load(text)
    for part in section.split("."):
        block = block.get(part) if isinstance(block, CommentedMap) else None
    if not isinstance(block, CommentedMap) or (key not in block and not add):
        raise DataError(f"params.yaml has no key '{key}' in section '{section}'.")
    if key not in block:
        block[key] = value
        return _dump(yaml, data)
    block[key] = value
    comment = (block.ca.items.get(key) or [None] * 3)[2]
    if comment is not None and comment.value.startswith("#"):
        # The comment stays as far from the new value as it was from the old one.
        line, column = block.lc.value(key)
        before = text.splitlines()[line][: comment.start_mark.column]
        column += len("null" if value is None else str(value)) + len(before) - len(before.rstrip())
        block.ca.items[key][2] = CommentToken(comment.value, CommentMark(column))
    return _dump(yaml, data)


def _dump(yaml: YAML, data: Any) -> str:
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


def newest_window(source_rows: int, params: Params) -> dict[str, Any]:
    """The newest `retrain.window_rows` rows, and the training part the reference follows."""
    size = params.retrain.window_rows
    start = 0 if size is None else max(0, source_rows - size)
    reference = training_rows(start, source_rows - start, params)
    return {"start": start, "stop": None, "reference": reference}


def move_window(params_path: str) -> dict[str, Any]:
    params = load_params(params_path)
    rows = len(read_source(params.ingest.source, params.ingest.sep, params.ingest.database))
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
    for key in (k for k in SHOWN if k in m["retrained"] and k in m["production"]):
        old, new = m["production"][key], m["retrained"][key]
        digits = 0 if key.startswith("profit") else 4
        lines.append(
            f"| {key} | {old:,.{digits}f} | {new:,.{digits}f} | {new - old:+,.{digits}f} |"
        )
    lines.append(f"\nPositive rate of the holdout: {m['retrained']['positive_rate']:.1%}.")
    if result.get("candidate"):
        candidate = result["candidate"]
        lines += shadow_lines(candidate["model_tag"], candidate["path"], candidate.get("branch"))
    if monitor:
        lines += ["", monitor.replace("## Drift monitor", "### Drift of the newest data")]
    return "\n".join(lines) + "\n"


def shadow_lines(tag: str, path: str, branch: str | None = None) -> list[str]:
    """How to run the retrained model as staging's shadow before the merge."""
    copy = "build/shadow/candidate.joblib"
    branch = branch or "<this pull request's branch>"
    return [
        "", "### Shadow on staging", "",
        f"The retrained model `{tag}` can score staging's traffic beside the model in service, "
        "answering nothing, before this pull request is merged. From the default branch:", "",
        "```bash",
        f"dvc get . {path} --rev {branch} -o {copy}",
        f"make image deploy ENV=staging SHADOW={copy}",
        "```", "",
        "then `make shadow-report PREDICTION_LOG=<staging's prediction log>`; `make promote` "
        "cites the report when it compared the promoted version.",
    ]  # fmt: skip


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
    for name in ("production", "out"):
        comparison.add_argument(f"--{name}", required=True)
    comparison.add_argument("--candidate", help="retrained model; default: paths.model")
    comparison.add_argument("--holdout", help="newest rows; default: paths.test")
    comparison.add_argument("--drift", default="false", help="true when drift was found")
    comparison.add_argument("--monitor", help="the monitor's Markdown report, for the body")
    comparison.add_argument("--branch", help="the pull request's branch, named in the body")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    if args.command == "window":
        moved = move_window(args.params)
        if args.out:
            write_json(moved, args.out)
        log.info("ingest window moved to the newest rows: %s", moved)
    elif args.command == "production":
        info = production_model.fetch(params, Path(args.out))
        log.info("production model: %s", info["source"])
    else:
        source = Path(args.production)
        info = read_json(source / "production.json")
        drift = args.drift.strip().lower() == "true"
        candidate_path = args.candidate or params.paths.model
        candidate = load_model(candidate_path)
        holdout = read_parquet(args.holdout or params.paths.test)
        result = compare(load_model(source / "model.joblib"), candidate, holdout, params, info,
                         drift)  # fmt: skip
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
        result["candidate"] = {"model_tag": lineage.model_tag(params, candidate_path),
                               "path": str(candidate_path), "branch": args.branch}  # fmt: skip
        write_json(result, out / "comparison.json")
        with atomic_open(out / "body.md") as fh:
            fh.write(to_markdown(result, window, monitor))
        github_output(open_pr=str(result["open_pr"]).lower())


if __name__ == "__main__":
    cli.run(main)
