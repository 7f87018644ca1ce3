"""Stage `ingest`: read the source, keep a window of rows in time order, write a Parquet snapshot.

The source is a delimited or Parquet file (path or fsspec URL), or, with `ingest.database` set,
a file holding an SQL query run against that database (`tabml.sql`).

python -m tabml.ingest --source URL_OR_PATH --out data/interim/data.parquet
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Sequence
from gzip import BadGzipFile

import fsspec
import pandas as pd

from tabml import cli
from tabml.io import DataError, write_parquet
from tabml.params import IngestParams, load_params
from tabml.sql import read_query

log = logging.getLogger(__name__)

OTHER_DELIMITERS = (",", ";", "\t", "|")
TIME_PARSED_SHARE = 0.99  # a text column is read as dates when this share of it parses


def normalize_name(name: str) -> str:
    """`Order.Total ` -> `order_total`: names that are valid identifiers everywhere."""
    return re.sub(r"\W+", "_", name.strip()).strip("_").lower()


def sniff_format(source: str) -> str:
    """`parquet`, `excel`, `json` or `text`, from the first bytes (after decompression)."""
    with fsspec.open(source, "rb", compression="infer") as fh:
        head = fh.read(8)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        return "excel"
    if head.lstrip()[:1] in (b"{", b"["):
        return "json"
    return "text"


def read_source(source: str, sep: str, database: str | None = None) -> pd.DataFrame:
    """Read the source: a delimited or Parquet file from a path or fsspec URL (compression
    inferred from the name), or with `database` set, the rows of the SQL query in `source`."""
    if database:
        return read_query(source, database)
    try:
        kind = sniff_format(source)
        if kind == "parquet":
            with fsspec.open(source, "rb") as fh:
                frame = pd.read_parquet(fh)
        elif kind in ("excel", "json"):
            raise DataError(
                f"{source}: this is {'an Excel' if kind == 'excel' else 'a JSON'} file; "
                "ingest reads delimited text, Parquet or an SQL query (ingest.database): "
                "export it as CSV or Parquet and point ingest.source at that."
            )
        else:
            with fsspec.open(source, "rb", compression="infer") as fh:
                frame = pd.read_csv(fh, sep=sep, low_memory=False)
    except FileNotFoundError:
        raise DataError(f"{source}: the source file does not exist.") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{source}: the file is empty (no header, no rows).") from None
    except (OSError, EOFError, BadGzipFile, zlib.error, UnicodeDecodeError) as exc:
        raise DataError(f"{source}: cannot read the file ({type(exc).__name__}: {exc}).") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{source}: not a well-formed '{sep}'-separated file ({exc}).") from None
    if frame.shape[1] == 1:
        header = str(frame.columns[0])
        found = [d for d in OTHER_DELIMITERS if d != sep and d in header]
        hint = f"; the header looks '{found[0]}'-separated" if found else ""
        raise DataError(
            f"{source}: only one column was found with the separator '{sep}'{hint}. "
            "Set ingest.sep in params.yaml to the file's separator."
        )
    if frame.empty:
        raise DataError(f"{source}: the file has a header but no data rows.")
    return frame


def in_time_order(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Rows in the order of `column` (`ingest.order_by`): dates and timestamps parsed, any other
    column as it sorts; ties keep their source order."""
    if column not in frame.columns:
        raise DataError(
            f"ingest.order_by names '{column}', which is no column of the source "
            f"({', '.join(frame.columns)}); correct the name or set it to null."
        )
    values = frame[column]
    if not pd.api.types.is_numeric_dtype(values):
        parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
        values = parsed if parsed.notna().mean() >= TIME_PARSED_SHARE else values
    if values.isna().any():
        raise DataError(
            f"ingest.order_by '{column}': {int(values.isna().sum()):,} rows have no time; "
            "drop them in the source or fill them."
        )
    return frame.iloc[values.argsort(kind="stable")].reset_index(drop=True)


def ingest(raw: pd.DataFrame, params: IngestParams, time_column: str) -> pd.DataFrame:
    """Normalise column names, put the rows in time order (`ingest.order_by`, else as they
    come), and keep rows [start, stop) with their position in that order."""
    frame = raw.rename(columns=normalize_name)
    if time_column in frame.columns:
        raise DataError(
            f"the source already has a column named '{time_column}' (the time column)."
        )
    if params.order_by:
        frame = in_time_order(frame, params.order_by)
    frame.insert(0, time_column, range(len(frame)))
    window = frame.iloc[params.start : params.stop].reset_index(drop=True)
    if window.empty:
        raise DataError(
            f"the window start={params.start}, stop={params.stop} selects no rows "
            f"out of {len(frame)}; check ingest.start and ingest.stop in params.yaml."
        )
    return window


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--source", required=True, help="local path or fsspec URL, or SQL query file")
    ap.add_argument("--out", required=True, help="Parquet snapshot to write")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    raw = read_source(args.source, params.ingest.sep, params.ingest.database)
    frame = ingest(raw, params.ingest, params.base.time_column)
    write_parquet(frame, args.out)
    log.info("wrote %s: %d rows, %d columns from %s", args.out, *frame.shape, args.source)


if __name__ == "__main__":
    cli.run(main)
