"""`make init`: adopt a dataset. Writes the source, the schema and the params it implies.

    python -m tabml.init --source FILE|URL --target COLUMN [--positive LABEL] [--time COLUMN]
        [--leak COLUMN,...] [--sep SEP] [--database SQLALCHEMY_URL]

It reads the source (CSV of any common separator, or Parquet) and writes it to
`data/raw/<name>.csv.gz`; with `--database`, the source is a file holding an SQL query, copied to
`data/raw/<name>.sql` and run by ingest. `--time` becomes `ingest.order_by`. It infers
`src/tabml/schema.py` from it (`tabml.schema_writer`) and sets the keys of `params.yaml` that
depend on the data; the comments there and every other key stay. `make init` then builds the
reference profile and runs the pipeline. Nothing is written unless the source, target and labels
are usable.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq

from tabml import cli, commands
from tabml.ingest import in_time_order, normalize_name, read_source
from tabml.io import DataError, atomic_open
from tabml.params import Params, load_params
from tabml.production_model import training_rows
from tabml.schema_writer import Column, infer, render

log = logging.getLogger(__name__)

RAW_DIR = Path("data/raw")
SCHEMA_PATH = Path("src/tabml/schema.py")
SEPARATORS = ",;\t|"
MAX_LABELS = 20
# Labels whose positive class goes without saying; any other pair needs --positive.
KNOWN_POSITIVE = {("no", "yes"): "yes", ("0", "1"): 1, ("False", "True"): True}


def sniff_sep(source: str) -> str:
    """The separator of a delimited file, from its first 64 KB."""
    with fsspec.open(source, "rb", compression="infer") as fh:
        head = fh.read(65536).decode("utf-8", errors="replace")
    try:
        return csv.Sniffer().sniff(head.split("\n", 1)[0], delimiters=SEPARATORS).delimiter
    except csv.Error:
        return ","


def read(source: str, sep: str | None, database: str | None = None) -> pd.DataFrame:
    """The source as a frame with normalised column names (ingest's reader: delimited text,
    Parquet, or the query of an SQL source)."""
    if not database and not sep:
        try:
            sep = sniff_sep(source)
        except FileNotFoundError:
            raise DataError(f"SOURCE={source}: no such file.") from None
    return read_source(source, sep or ",", database).rename(columns=normalize_name)


def write_source(frame: pd.DataFrame, args: Any) -> Path:
    """The source under data/raw: the rows as CSV, or the query of an SQL source."""
    stem = Path(args.source.split("?")[0]).name.split(".")[0]
    RAW_DIR.mkdir(parents=True, exist_ok=True)
    if args.database:
        out = RAW_DIR / f"{stem}.sql"
        with fsspec.open(args.source, "r", encoding="utf-8") as fh:
            query = fh.read().strip()
        with atomic_open(out) as fh:
            fh.write(query + "\n")
        return out
    out = RAW_DIR / f"{stem}.csv.gz"
    with atomic_open(out, "wb") as fh:
        frame.to_csv(fh, index=False, compression={"method": "gzip", "mtime": 0})
    return out


def positive_label(labels: list[Any], given: str | None, target: str) -> Any:
    """The positive class: --positive (matched as text), or the obvious one of a known pair."""
    shown = ", ".join(map(repr, labels))
    if given is not None:
        found = [label for label in labels if str(label) == given]
        if not found:
            raise DataError(f"--positive {given!r} is no label of '{target}' ({shown}).")
        return found[0]
    known = KNOWN_POSITIVE.get(tuple(sorted(map(str, labels))))
    if known is None:
        raise DataError(f"'{target}' has the labels {shown}: name the positive one (POSITIVE=).")
    return known


def check_target(frame: pd.DataFrame, target: str) -> list[Any]:
    if target not in frame.columns:
        raise DataError(
            f"--target {target}: no such column; the source has: {', '.join(frame.columns)}."
        )
    if frame[target].isna().any():
        raise DataError(
            f"'{target}' is missing in {int(frame[target].isna().sum()):,} rows: drop or label "
            "them in the source first."
        )
    labels = sorted(frame[target].unique().tolist(), key=str)
    if not 2 <= len(labels) <= MAX_LABELS:
        raise DataError(f"'{target}' has {len(labels)} distinct values; a label needs 2 to 20.")
    return labels


def label_column(name: str, labels: list[Any], kind: str) -> Column:
    values = ", ".join(json.dumps(label) for label in labels)
    return Column(name, kind, f"pa.Field(isin=({values},))", "the label (base.target)")


def settings(
    frame: pd.DataFrame, target: str, positive: Any, drop: list[str], leak: list[str],
    source: str, time_column: str, params: Params, database: str | None = None,
    order_by: str | None = None,
) -> dict[tuple[str, str], Any]:  # fmt: skip
    """`(section, key) -> value` for every key of params.yaml that follows from the data."""
    rows = len(frame)
    rate = float((frame[target] == positive).mean())
    missing = float(frame.isna().mean().max())
    window = min(4000, max(rows // 10, 200))
    return {
        ("ingest", "source"): source, ("ingest", "sep"): ",", ("ingest", "database"): database,
        ("ingest", "order_by"): order_by,
        ("ingest", "start"): 0, ("ingest", "stop"): None,
        ("base", "target"): target, ("base", "positive_label"): positive,
        ("base", "time_column"): time_column,
        ("base", "threshold"): round(rate, 2) or 0.01,
        ("validate", "min_rows"): min(1000, max(rows // 20, 100)),
        ("validate", "max_rows"): max(1_000_000, rows * 10),
        ("validate", "min_positive_rate"): round(rate / 4, 4),
        ("validate", "max_positive_rate"): min(0.99, round(rate * 3 + 0.05, 2)),
        ("validate", "missing_values"): [],
        ("validate", "max_missing_share"): min(0.99, round(max(0.5, missing + 0.1), 2)),
        ("validate", "known_after_outcome"): leak,
        ("train", "drop_columns"): drop,
        ("drift", "reference_start"): 0,
        ("drift", "reference_stop"): training_rows(0, rows, params)[1],
        ("drift", "exclude"): [c for c in drop if c not in leak],
        ("evaluate", "value_per_positive"): 0, ("evaluate", "cost_per_action"): 0,
        ("gate", "floors"): {"valid.roc_auc": 0.5, "test.roc_auc": 0.5},
        ("monitor", "window_rows"): window,
        ("monitor", "min_rows"): min(200, window // 2),
        ("retrain", "window_rows"): None,
    }  # fmt: skip


def write_params(path: Path, values: dict[tuple[str, str], Any]) -> None:
    """Set `values` in the params file, keeping its comments and every other key."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    data = yaml.load(path.read_text(encoding="utf-8"))
    for (section, key), value in values.items():
        if isinstance(value, list):  # short lists stay on one line: [a, b]
            value = CommentedSeq(value)
            value.fa.set_flow_style()
        data.setdefault(section, {})[key] = value
    text = io.StringIO()
    yaml.dump(data, text)
    with atomic_open(path) as fh:
        fh.write(text.getvalue())


def adopt(args: Any) -> list[str]:
    """Write the source, schema and params for the data; return what to review."""
    params = load_params(args.params)
    frame = read(args.source, args.sep, args.database)
    target = normalize_name(args.target)
    labels = check_target(frame, target)
    positive = positive_label(labels, args.positive, target)
    leak = [normalize_name(c) for c in args.leak.split(",") if c.strip()] if args.leak else []
    time = normalize_name(args.time) if args.time else None
    for name in [*leak, *([time] if time else [])]:
        if name not in frame.columns:
            raise DataError(f"'{name}' is no column of the source: {', '.join(frame.columns)}.")
    if time:
        in_time_order(frame, time)  # every row has a time: ingest.order_by will sort by it
    clock = params.base.time_column if params.base.time_column not in frame.columns else "row"
    columns = infer(frame)
    kind = next(c.kind for c in columns if c.name == target)
    columns = [label_column(c.name, labels, kind) if c.name == target else c for c in columns]
    clock_line = Column(clock, "int", "pa.Field(ge=0)", "row position (base.time_column)")
    constant = [c for c in frame.columns if c != target and frame[c].nunique() <= 1]
    drop = [*leak, *([time] if time else []), *(c.name for c in columns if c.free_text),
            *constant]  # fmt: skip
    old = Path(params.ingest.source)
    out = write_source(frame, args)
    with atomic_open(SCHEMA_PATH) as fh:
        fh.write(render([clock_line, *columns], {"source": out.as_posix(), "rows": len(frame)}))
    if shutil.which("ruff"):  # the house format, so that `make lint` passes on the new schema
        commands.run("ruff", "format", "--quiet", str(SCHEMA_PATH))
    values = settings(frame, target, positive, list(dict.fromkeys(drop)), leak,
                      out.as_posix(), clock, params, args.database, time)  # fmt: skip
    write_params(Path(args.params), values)
    replaced = old.resolve() != out.resolve() and RAW_DIR.resolve() in old.resolve().parents
    if replaced and old.is_file():
        old.unlink()
        log.info("removed the previous source %s", old)
    return review(columns, values, out)


def review(columns: list[Column], values: dict[tuple[str, str], Any], out: Path) -> list[str]:
    free = [c.name for c in columns if c.free_text]
    return [
        f"wrote {out} and {SCHEMA_PATH} ({len(columns)} columns) and set "
        f"{len(values)} keys of params.yaml. Review, in order:",
        f"1. {SCHEMA_PATH}: tighten each range and category set to what a valid record can "
        "hold; add the cross-column rules to ROW_RULES.",
        f"2. params.yaml train.drop_columns {values[('train', 'drop_columns')]}: columns known "
        "only after the outcome (LEAK=), the time column, columns of one value and free text"
        + (f" ({', '.join(free)})" if free else "")
        + " are no features.",
        "3. params.yaml: the comments above the keys make init set describe the previous data; "
        "the values are set from yours (validate, drift, gate, monitor).",
        "4. make test: the template tests run on your data; the example's tests skip.",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--source", required=True, help="CSV or Parquet file, or fsspec URL")
    ap.add_argument("--target", required=True, help="the label column")
    ap.add_argument("--positive", help="the positive label (needed unless obvious)")
    ap.add_argument("--time", help="column that orders the rows in time")
    ap.add_argument("--leak", help="comma-separated columns known only after the outcome")
    ap.add_argument("--sep", help="separator of a CSV source (default: detected)")
    ap.add_argument("--database", help="SQLAlchemy URL: the source is then an SQL query file")
    args = ap.parse_args(argv)
    for line in adopt(args):
        print(line)


if __name__ == "__main__":
    cli.run(main)
