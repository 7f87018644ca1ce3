"""The act harness's reading of act's output (no act run needed)."""

from __future__ import annotations

from harness import cleanup_only

SUCCEEDED = "[ci/report  ]   ✅  Success - Complete job\n[ci/report  ] 🏁  Job succeeded\n"
CLEANUP = 'Error: Error occurred running finally: Delete "http://x/volumes/v": context deadline\n'


def test_a_cleanup_timeout_after_succeeded_jobs_is_not_a_failure():
    assert cleanup_only(SUCCEEDED + CLEANUP)


def test_a_failed_job_or_another_error_is_a_failure():
    failed = SUCCEEDED.replace("succeeded", "failed")
    assert not cleanup_only(failed + CLEANUP)
    assert not cleanup_only(SUCCEEDED + CLEANUP + "Error: Job 'pipeline' failed\n")
    assert not cleanup_only(SUCCEEDED)  # nothing failed: nothing to forgive
    assert not cleanup_only(CLEANUP)  # no job ran
