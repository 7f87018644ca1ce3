"""Print files that params.yaml's `paths` names, for the shell commands that need one.

    python -m tabml.paths reference        # data/reference/profile.json
    python -m tabml.paths --absolute prediction_log

dvc.yaml reads these files as `${paths.<key>}` and every `python -m tabml.*` entry defaults to
them; a Makefile recipe that must name one (a file to commit, a hint) asks here instead of
repeating it, so that moving a file in params.yaml moves it everywhere. `prediction_log` is the
service's log directory (`serve.prediction_log`), which `make serve` and `make monitor` share.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from tabml import cli
from tabml.params import PathsParams, load_params

PATH_KEYS = tuple(f.name for f in dataclasses.fields(PathsParams))
KEYS = (*PATH_KEYS, "prediction_log")


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("keys", nargs="+", choices=KEYS, metavar="key", help=", ".join(KEYS))
    ap.add_argument("--absolute", action="store_true", help="resolved from the working directory")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    for key in args.keys:
        value = getattr(params.paths, key) if key in PATH_KEYS else params.serve.prediction_log
        print(Path(value).resolve() if args.absolute else value)


if __name__ == "__main__":
    cli.run(main)
