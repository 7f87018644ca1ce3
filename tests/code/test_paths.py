"""The files the stages exchange are named once, in params.yaml's `paths`: dvc.yaml reads them as
`${paths.<key>}`, the entries default to them, and the Makefile never repeats them."""

from __future__ import annotations

from pathlib import Path

import yaml
from testkit.dvcfile import template_keys

from tabml import paths
from tabml.params import PathsParams, load_params

ROOT = Path(__file__).resolve().parents[2]
PATHS = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))["paths"]
DVC_YAML = (ROOT / "dvc.yaml").read_text(encoding="utf-8")


def test_every_paths_key_dvc_yaml_uses_is_in_params():
    used = {key.partition(".")[2] for key in template_keys(DVC_YAML) if key.startswith("paths.")}
    assert used, "dvc.yaml reads no ${paths.<key>}"
    assert used <= set(PATHS), f"params.yaml `paths` lacks {sorted(used - set(PATHS))}"


def test_dvc_yaml_reads_the_paths_instead_of_repeating_them():
    repeated = sorted(value for value in PATHS.values() if value in DVC_YAML)
    assert not repeated, f"dvc.yaml names {repeated}; use ${{paths.<key>}}"


def test_no_makefile_line_names_a_path_of_params():
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    repeated = [
        f"Makefile:{number}: {value}"
        for number, line in enumerate(lines, start=1)
        if not line.lstrip().startswith("#")
        for value in PATHS.values()
        if value in line
    ]
    assert not repeated, (
        "the Makefile repeats files of params.yaml's `paths` (let the entry default them, or ask "
        f"`python -m tabml.paths <key>`): {repeated}"
    )


def test_params_paths_are_the_typed_section():
    assert set(PATHS) == set(PathsParams.__dataclass_fields__)
    assert load_params(ROOT / "params.yaml").paths == PathsParams(**PATHS)


def test_paths_entry_prints_what_the_params_file_says(tmp_path, capsys):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    raw["paths"]["reference"] = "elsewhere/profile.json"
    moved = tmp_path / "params.yaml"
    moved.write_text(yaml.safe_dump(raw), encoding="utf-8")
    paths.main(["--params", str(moved), "reference", "model"])
    assert capsys.readouterr().out.split() == ["elsewhere/profile.json", PATHS["model"]]
