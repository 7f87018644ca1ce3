"""Stage `check_params`: the params file as a whole, before any other stage runs.

python -m tabml.check_params [--out reports/params-check.txt]

Every key typed, ranged and cross-checked (`tabml.params`), every column a setting names
declared by the schema (`tabml.dataset`), and each estimator's options checked against the
estimator's own signature and constraints, with a "did you mean" for a near miss. All problems
are reported, one line each. `dvc repro` runs this stage first (ingest depends on its output, a
file whose content never changes), so a bad params file stops the pipeline before a stage
removes its outputs; the output is written only on success.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

from tabml import cli
from tabml.dataset import check_settings
from tabml.estimators import ESTIMATORS
from tabml.io import DataError, atomic_open
from tabml.params import Params, ParamsError, load_params
from tabml.params_types import near

log = logging.getLogger(__name__)

PASSED = "params.yaml passed tabml.check_params\n"
SET_BY_THE_PIPELINE = {"random_state"}  # from base.seed


def estimator_problems(name: str, settings: dict[str, Any], cls: type) -> list[str]:
    """Options `cls` does not take, or values its constraints refuse."""
    accepted = set(inspect.signature(cls).parameters) - SET_BY_THE_PIPELINE
    found = [
        f"train.{name}.{option} is no option of {cls.__name__}{near(option, accepted)}"
        for option in settings
        if option not in accepted
    ]
    if found:
        return found
    try:  # scikit-learn's own parameter constraints, as `fit` would check them
        from sklearn.utils._param_validation import validate_parameter_constraints
    except ImportError:  # pragma: no cover - an older scikit-learn checks at fit time
        return []
    constraints = getattr(cls, "_parameter_constraints", {})
    try:
        validate_parameter_constraints(constraints, settings, caller_name=cls.__name__)
    except (ValueError, TypeError) as exc:
        return [f"train.{name}: {exc}"]
    return []


def problems(params: Params) -> list[str]:
    """Every problem of a loaded params file beyond its types and ranges."""
    found = []
    try:
        check_settings(params)
    except DataError as exc:
        found.append(str(exc).removeprefix("params.yaml: "))
    for name, cls in ESTIMATORS.items():
        found += estimator_problems(name, dict(getattr(params.train, name)), cls)
    return found


def main(argv: Sequence[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--out", help="file written when every check passes")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    found = problems(params)
    if found:
        raise ParamsError("\n".join(f"{args.params}: {problem}" for problem in found))
    if args.out:
        with atomic_open(args.out) as fh:
            fh.write(PASSED)
    log.info("%s: every key has its type and range, and every column it names exists", args.params)


if __name__ == "__main__":
    cli.run(main)
