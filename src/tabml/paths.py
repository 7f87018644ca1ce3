"""Print files that params.yaml's `paths` names, for the shell commands that need one.

    python -m tabml.paths reference        # data/reference/profile.json

dvc.yaml reads these files as `${paths.<key>}` and every `python -m tabml.*` entry defaults to
them; a Makefile recipe that must name one (a file to commit, a hint) asks here instead of
repeating it, so that moving a file in params.yaml moves it everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from tabml import cli
from tabml.params import PathsParams, load_params

KEYS = tuple(f.name for f in dataclasses.fields(PathsParams))


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("keys", nargs="+", choices=KEYS, metavar="key", help=", ".join(KEYS))
    args = ap.parse_args(argv)
    paths = load_params(args.params).paths
    for key in args.keys:
        print(getattr(paths, key))


if __name__ == "__main__":
    cli.run(main)
