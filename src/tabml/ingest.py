"""Stage `ingest`: read the source, keep a window of rows in time order, write a Parquet snapshot.

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

log = logging.getLogger(__name__)

OTHER_DELIMITERS = (",", ";", "\t", "|")


def normalize_name(name: str) -> str:
    """`Order.Total ` -> `order_total`: names that are valid identifiers everywhere."""
    return re.sub(r"\W+", "_", name.strip()).strip("_").lower()


def read_source(source: str, sep: str) -> pd.DataFrame:
    """Read a delimited file from a path or fsspec URL (compression inferred from the name)."""
    try:
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


def ingest(raw: pd.DataFrame, params: IngestParams, time_column: str) -> pd.DataFrame:
    """Normalise column names and keep rows [start, stop) with their source position."""
    frame = raw.rename(columns=normalize_name)
    if time_column in frame.columns:
        raise DataError(
            f"the source already has a column named '{time_column}' (the time column)."
        )
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
    ap.add_argument("--source", required=True, help="local path or fsspec URL")
    ap.add_argument("--out", required=True, help="Parquet snapshot to write")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    raw = read_source(args.source, params.ingest.sep)
    frame = ingest(raw, params.ingest, params.base.time_column)
    write_parquet(frame, args.out)
    log.info("wrote %s: %d rows, %d columns from %s", args.out, *frame.shape, args.source)


if __name__ == "__main__":
    cli.run(main)
