"""Fixtures for the workflow tests: the runner-like world and the throw-away repository.

The workflows' jobs run in the ubuntu-24.04 stand-in image (runner_image.py), as on a hosted
runner; `TABML_ACT_RUNNER=host` (`make test-host`) runs them on this machine instead (act's
self-hosted mode), which is quicker and proves less.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_image import Runner, act_in_image, runner_or_fail


@pytest.fixture(scope="session")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    """The ubuntu-24.04 stand-in image and what its jobs need (see runner_image.py)."""
    with runner_or_fail(tmp_path_factory.mktemp("runner")) as ready:
        yield ready


@pytest.fixture(scope="session")
def act_runner(request: pytest.FixtureRequest) -> Runner | None:
    """The runner image the act jobs run in, or None: on this machine."""
    return request.getfixturevalue("runner") if act_in_image() else None


@pytest.fixture(scope="session")
def act_repo(root: Path, tmp_path_factory: pytest.TempPathFactory, act_runner: Runner | None):
    """A throw-away copy of the project whose `act` jobs run as `act_runner` says."""
    from harness import ActRepo

    return ActRepo(root, tmp_path_factory.mktemp("act"), act_runner)
