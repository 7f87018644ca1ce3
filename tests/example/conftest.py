"""The example's tests state facts of the shipped data (UCI Bank Marketing): its row counts,
columns, row rules, drift and model behaviour. They run only while `ingest.source` is the
shipped file, and skip, saying why, once a fork declares its own data."""

from __future__ import annotations

from pathlib import Path

import pytest
from testkit.stages import run_stages, source_batch  # noqa: F401 (fixtures)

from tabml.io import file_md5
from tabml.params import load_params

ROOT = Path(__file__).resolve().parents[2]

# md5 of the shipped data/raw/bank-additional-full.csv.gz.
EXAMPLE_MD5 = "5bbd00ff2afb70bb28b5a82e708b406f"


def example_data_missing() -> str | None:
    """Why the example's facts cannot hold here, or None when the shipped data is declared."""
    source = load_params(ROOT / "params.yaml").ingest.source
    path = ROOT / source
    if path.is_file() and file_md5(path) == EXAMPLE_MD5:
        return None
    return (
        "states facts of the shipped example (UCI Bank Marketing); this repository's "
        f"ingest.source is {source}"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = example_data_missing()
    if reason is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.skip(reason=reason))
