"""`dvc repro` and `make` on a bad params file, in a copy of the project: one line per problem,
exit non-zero, and no tracked file changed (DVC removes a stage's outputs before running it, so
the check must come first)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

CASES = {
    "threshold-text": ("  threshold: 0.1\n", '  threshold: "0.1"\n', "base.threshold is '0.1'"),
    "threshold-range": ("  threshold: 0.1\n", "  threshold: 1.5\n", "base.threshold is 1.5"),
    "test-size": ("  test_size: 0.15\n", "  test_size: abc\n", "split.test_size is 'abc'"),
    "estimator-option": ("    max_iter: 200\n", "    max_itr: 200\n", "did you mean 'max_iter'?"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_params_file_stops_dvc_repro_before_any_stage(workspace, root, case):
    old, new, message = CASES[case]
    (workspace.path / ".venv").symlink_to(root / ".venv")  # make's recipes use the project's
    env = {**workspace.env, "PYTHONPATH": str(workspace.path / "src")}
    path = workspace.path / "params.yaml"
    text = path.read_text()
    if old not in text:
        pytest.skip(f"params.yaml has no line {old.strip()!r} to break")
    path.write_text(text.replace(old, new, 1))
    for cmd in (["dvc", "repro"], ["make", "-o", ".venv/.synced", "check-params"]):
        done = workspace.run(*cmd, check=False, env=env)
        output = done.stdout + done.stderr
        errors = [line for line in output.splitlines() if line.startswith("ERROR: params.yaml")]
        assert done.returncode != 0, output
        assert len(errors) == 1 and message in errors[0], output
        assert "Traceback" not in output
    status = workspace.run("git", "status", "--porcelain").stdout.splitlines()
    assert [line for line in status if line != "?? .venv"] == [" M params.yaml"], status
