"""Fixtures for the workflow tests: the throw-away repository of the `act` runs."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def act_repo(root: Path, tmp_path_factory: pytest.TempPathFactory):
    """A throw-away copy of the project for `act` runs (see harness.py)."""
    from harness import ActRepo

    return ActRepo(root, tmp_path_factory.mktemp("act"))
