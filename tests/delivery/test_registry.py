"""The MLflow registry steps of a release, on the session's trained pipeline and its real store."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tabml import registry
from tabml.io import DataError, file_md5

pytestmark = pytest.mark.slow
NAME = "tabml-test"


@pytest.fixture
def store(pipeline, tmp_path, monkeypatch) -> str:
    """A copy of the pipeline's MLflow store (it holds the run that logged the model)."""
    db = tmp_path / "mlflow.db"
    shutil.copy2(pipeline.path / "mlflow.db", db)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_register_once_per_model_with_its_lineage(pipeline, store):
    model, lock = pipeline.path / "models/model.joblib", pipeline.path / "dvc.lock"
    first = registry.register(str(model), str(lock), NAME)
    again = registry.register(str(model), str(lock), NAME)
    assert again.version == first.version
    tags = MlflowClient(store).get_model_version(NAME, first.version).tags
    assert tags["model_md5"] == file_md5(model)
    assert tags["git_commit"] == pipeline.run("git", "rev-parse", "HEAD").stdout.strip()
    assert tags["data.train.md5"] == file_md5(pipeline.path / "data/processed/train.parquet")
    assert MlflowClient(store).get_run(tags["run_id"]).data.tags["model_md5"] == file_md5(model)


def test_register_refuses_a_model_the_lock_does_not_pin(pipeline, store, tmp_path):
    changed = tmp_path / "models/model.joblib"
    changed.parent.mkdir()
    changed.write_bytes((pipeline.path / "models/model.joblib").read_bytes() + b"\0")
    lock = tmp_path / "dvc.lock"
    shutil.copy2(pipeline.path / "dvc.lock", lock)
    with pytest.raises(DataError, match=r"is not what .*dvc\.lock pins"):
        registry.register(str(changed), str(lock), NAME)


def test_register_needs_the_run_that_logged_the_model(pipeline, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    model, lock = pipeline.path / "models/model.joblib", pipeline.path / "dvc.lock"
    with pytest.raises(DataError, match="make track"):
        registry.register(str(model), str(lock), NAME)


def test_promote_keeps_the_previous_version_and_rollback_restores_it(pipeline, store):
    model, lock = pipeline.path / "models/model.joblib", pipeline.path / "dvc.lock"
    one = str(registry.register(str(model), str(lock), NAME).version)
    # A second version of the same run's model stands for the next release.
    client = MlflowClient(store)
    source = client.get_model_version(NAME, one)
    two = str(client.create_model_version(NAME, source.source, run_id=source.run_id).version)

    assert registry.promote(NAME, "production", one) is None
    assert registry.promote(NAME, "production", two) == one
    aliases = registry.show(NAME)
    assert aliases["production"]["version"] == two
    assert aliases["production-previous"]["version"] == one
    assert registry.promote(NAME, "production", two) == two  # again: nothing moves
    assert registry.show(NAME)["production-previous"]["version"] == one

    assert registry.rollback(NAME, "production") == one
    assert registry.show(NAME) == {"production": registry.show(NAME)["production"]}
    assert registry.show(NAME)["production"]["version"] == one
    with pytest.raises(DataError, match="no alias production-previous"):
        registry.rollback(NAME, "production")


def test_promote_refuses_a_version_that_does_not_exist(pipeline, store):
    registry.register(
        str(pipeline.path / "models/model.joblib"), str(pipeline.path / "dvc.lock"), NAME
    )
    with pytest.raises(Exception, match="999"):
        registry.promote(NAME, "staging", "999")
    assert "staging" not in registry.show(NAME)


def test_registry_cli_tracked_says_whether_a_run_logged_the_model(pipeline, store, tmp_path):
    env = {**pipeline.env, "MLFLOW_TRACKING_URI": store}
    assert pipeline.run("python", "-m", "tabml.registry", "tracked", env=env).returncode == 0
    empty = {**pipeline.env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'none.db'}"}
    done = pipeline.run("python", "-m", "tabml.registry", "tracked", env=empty, check=False)
    assert done.returncode == 1
    assert Path(pipeline.path / "models/model.joblib").exists()


def test_promotion_cites_the_shadow_report_that_compared_the_version(pipeline, store):
    model, lock = pipeline.path / "models/model.joblib", pipeline.path / "dvc.lock"
    version = str(registry.register(str(model), str(lock), NAME).version)
    registry.promote(NAME, "staging", version)
    report = {"model_version": "tabml:0123", "shadow_model_version": f"tabml:{file_md5(model)}",
              "shadow_scored": 1200, "start": "2026-01-01T00:00:00+00:00",
              "stop": "2026-01-02T00:00:00+00:00", "agreement": 0.9712, "psi": 0.0412}  # fmt: skip
    assert registry.cite_shadow_report(NAME, "staging", version, report)
    cited = MlflowClient(store).get_model_version(NAME, version).tags["staging.shadow_report"]
    assert cited.startswith("the shadow model of the shadow report on 1200 records")
    assert "97.1%" in cited and "PSI 0.041" in cited
    other = {**report, "shadow_model_version": "tabml:4567"}
    assert not registry.cite_shadow_report(NAME, "production", version, other)
    assert (
        "production.shadow_report" not in MlflowClient(store).get_model_version(NAME, version).tags
    )


def test_promote_pushes_the_alias_target_to_a_real_pushgateway(pipeline, store):
    from testkit import prometheus

    if prometheus.missing():
        pytest.skip(f"{', '.join(prometheus.missing())} not installed: make system-packages")
    model, lock = pipeline.path / "models/model.joblib", pipeline.path / "dvc.lock"
    version = str(registry.register(str(model), str(lock), NAME).version)
    registry.promote(NAME, "staging", version)
    with prometheus.pushgateway() as gateway:
        registry.push_alias(NAME, "staging", gateway.url)
        with urllib.request.urlopen(f"{gateway.url}/metrics", timeout=10) as response:
            exposed = response.read().decode()
    (line,) = [x for x in exposed.splitlines() if x.startswith("tabml_registry_alias_info{")]
    assert 'alias="staging"' in line and f'version="{version}"' in line
    assert f'model_tag="{NAME}:{file_md5(model)}"' in line and line.endswith(" 1")
