"""Stage `split`: train / validation / test, in time order (default) or stratified at random.

    python -m tabml.split --data IN.parquet --train TRAIN.parquet --valid VALID.parquet \
        --test TEST.parquet
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from tabml import cli
from tabml.io import DataError, read_parquet, write_parquet
from tabml.params import Params, load_params

log = logging.getLogger(__name__)

STRATEGIES = ("time", "stratified")


def split(frame: pd.DataFrame, params: Params) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split into (train, valid, test) with the sizes and strategy of `params.split`."""
    cfg = params.split
    if cfg.strategy not in STRATEGIES:
        raise DataError(f"split.strategy is '{cfg.strategy}'; expected one of {STRATEGIES}.")
    if not (cfg.valid_size > 0 and cfg.test_size > 0 and cfg.valid_size + cfg.test_size < 1):
        raise DataError("split.valid_size and split.test_size must be > 0 and sum to < 1.")
    n_test = round(len(frame) * cfg.test_size)
    n_valid = round(len(frame) * cfg.valid_size)
    if min(n_test, n_valid, len(frame) - n_test - n_valid) < 1:
        raise DataError(f"{len(frame)} rows are too few to split into train, valid and test.")
    if cfg.strategy == "time":
        ordered = frame.sort_values(params.base.time_column, kind="stable")
        a, b = len(frame) - n_valid - n_test, len(frame) - n_test
        return _parts(ordered.iloc[:a], ordered.iloc[a:b], ordered.iloc[b:])
    # Stratified: shuffle, then cut each label's rows at the same quantiles.
    shuffled = frame.sample(frac=1.0, random_state=params.base.seed)
    by_label = shuffled.groupby(params.base.target, sort=False)
    quantile = by_label.cumcount() / by_label[params.base.target].transform("size")
    test = quantile < cfg.test_size
    valid = ~test & (quantile < cfg.test_size + cfg.valid_size)
    return _parts(shuffled[~test & ~valid], shuffled[valid], shuffled[test])


def _parts(*parts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return tuple(part.reset_index(drop=True) for part in parts)  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    for name in ("data", "train", "valid", "test"):
        ap.add_argument(f"--{name}", required=True)
    args = ap.parse_args(argv)
    params = load_params(args.params)
    parts = split(read_parquet(args.data), params)
    for part, path in zip(parts, (args.train, args.valid, args.test), strict=True):
        write_parquet(part, path)
    log.info(
        "split %s rows (train, valid, test) with strategy '%s'",
        [len(p) for p in parts],
        params.split.strategy,
    )


if __name__ == "__main__":
    cli.run(main)
