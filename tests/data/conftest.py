"""Fixtures of the data tests: a real source batch and the stages that check it."""

from __future__ import annotations

from testkit.stages import run_stages, source_batch  # noqa: F401 (fixtures)
