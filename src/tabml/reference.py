"""The drift reference: a profile of the training window, committed next to the data.

    python -m tabml.reference [--out PROFILE]     (make reference-profile)

`validate` runs before `split`, so it cannot profile the training part of the batch it checks;
and a profile recomputed from each new batch would drift along with it. The reference is
therefore fixed: source rows [drift.reference_start, drift.reference_stop) of `ingest.source`,
read through `ingest` and held to the same contract as any batch. It is a declared input of
`validate`, which refuses a profile of another window than `drift` declares; rewriting it is a
reviewed change (`make reference-profile`, then commit), like moving the training window.
`--out` defaults to params.yaml's `paths.reference`, the file `validate` reads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from tabml import cli
from tabml.dataset import record_schema, rules_by_key
from tabml.drift import build_profile
from tabml.findings import ERROR, collect
from tabml.ingest import ingest, read_source
from tabml.io import DataError, write_json
from tabml.params import Params, load_params

log = logging.getLogger(__name__)


def reference_profile(params: Params) -> dict[str, Any]:
    """Profile of the reference window of `ingest.source`; it must pass the record contract."""
    cfg = params.drift
    window = replace(params.ingest, start=cfg.reference_start, stop=cfg.reference_stop)
    frame = ingest(
        read_source(window.source, window.sep, window.database), window, params.base.time_column
    )
    errors = collect(record_schema(), frame, ERROR, rules_by_key(params, None))
    if errors:
        found = "; ".join(f"{f.column}: {f.check}" for f in errors)
        raise DataError(f"the reference window fails the schema ({found}).")
    return {
        "source": window.source,
        "start": window.start,
        "stop": window.start + len(frame),
        "rows": len(frame),
        "columns": build_profile(frame, exclude=[params.base.time_column]),
    }


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--out", help="profile (JSON) to write; default: paths.reference")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    args.out = args.out or params.paths.reference
    profile = reference_profile(params)
    write_json(profile, args.out)
    log.info(
        "wrote %s: rows [%d, %d) of %s",
        args.out,
        profile["start"],
        profile["stop"],
        profile["source"],
    )


if __name__ == "__main__":
    cli.run(main)
