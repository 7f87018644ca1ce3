from dataclasses import FrozenInstanceError

import pytest
import yaml

from tabml.params import load_params, parse_params


def test_project_params_load_into_typed_sections(root):
    params = load_params(root / "params.yaml")
    assert isinstance(params.ingest.sep, str) and params.ingest.sep
    assert isinstance(params.train.drop_columns, tuple)
    with pytest.raises(FrozenInstanceError):
        params.base.seed = 1  # type: ignore[misc]


def test_unknown_key_is_named(root):
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["train"]["max_dpeth"] = 3
    with pytest.raises(ValueError, match=r"unknown key .train\.max_dpeth"):
        parse_params(raw)


def test_unknown_section_and_missing_base_are_rejected(root):
    raw = yaml.safe_load((root / "params.yaml").read_text())
    with pytest.raises(ValueError, match="unknown section"):
        parse_params({**raw, "no_such_section": {}})
    with pytest.raises(ValueError, match="'base'"):
        parse_params({k: v for k, v in raw.items() if k != "base"})
