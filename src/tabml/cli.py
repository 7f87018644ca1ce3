"""The one entry style of every stage: parse arguments, configure logging, report data errors."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from tabml.commands import CommandError
from tabml.io import DataError
from tabml.params import ParamsError

log = logging.getLogger(__name__)

EXIT_DATA_ERROR = 1


def parser(description: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every stage shares."""
    ap = argparse.ArgumentParser(description=(description or "").strip().splitlines()[0])
    ap.add_argument("--params", default="params.yaml", help="parameters file")
    return ap


def run(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> None:
    """Run an entry; a `DataError` or `CommandError` becomes one readable paragraph, exit 1."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main(argv)
    except FileNotFoundError as exc:  # an input an earlier step writes
        print(
            f"\nERROR: {exc.filename or exc}: no such file; run the step that writes it first "
            "(make help lists them).\n",
            file=sys.stderr,
        )
        sys.exit(EXIT_DATA_ERROR)
    except (DataError, CommandError) as exc:
        lines = str(exc).splitlines() if isinstance(exc, ParamsError) else [str(exc)]
        shown = "\n".join(f"ERROR: {line}" for line in lines)  # a params problem per line
        print(f"\n{shown}\n", file=sys.stderr)
        sys.exit(EXIT_DATA_ERROR)
