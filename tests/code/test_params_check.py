"""A bad params file: one line per problem, naming the key, before anything runs."""

from __future__ import annotations

import copy
import itertools
import subprocess
import sys

import pytest
import yaml

from tabml import check_params
from tabml.params import ParamsError, load_params, parse_params
from tabml.params_types import CHOICES, RANGES


@pytest.fixture
def raw(root):
    return yaml.safe_load((root / "params.yaml").read_text())


def edited(raw, key: str, value):
    out = copy.deepcopy(raw)
    *sections, last = key.split(".")
    node = out
    for name in sections:
        node = node.setdefault(name, {})
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return out


DELETE = object()


def a_column(params) -> str:
    return params.base.target


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("base.threshold", "0.1", "base.threshold is '0.1'; expected a number."),
        ("base.threshold", 1.5, "base.threshold is 1.5, out of its range [0, 1]."),
        ("base.seed", True, "base.seed is True; expected a whole number."),
        ("split.test_size", "abc", "split.test_size is 'abc'; expected a number."),
        ("split.valid_size", 0.9, "split.valid_size + split.test_size is"),
        ("split.strategy", "tme", "expected one of: time, stratified; did you mean 'time'?"),
        ("train.max_dpeth", 3, "unknown key 'train.max_dpeth'"),
        ("validate", DELETE, "section 'validate' is missing."),
        ("valdate", {}, "unknown section 'valdate'; did you mean 'validate'?"),
        ("train.drop_columns", "abc", "train.drop_columns is 'abc'; expected a list of texts."),
        ("ingest.stop", 0, "ingest.stop is 0, out of its range (0, inf]."),
        ("tracking.timeout_seconds", 0, "tracking.timeout_seconds is 0, out of its range"),
    ],
)
def test_each_bad_value_is_one_line_naming_its_key(raw, key, value, message):
    with pytest.raises(ParamsError) as info:
        parse_params(edited(raw, key, value))
    lines = str(info.value).splitlines()
    assert len(lines) == 1, lines
    assert message in lines[0]


def test_every_problem_is_reported_at_once(raw):
    bad = edited(edited(raw, "base.threshold", 2), "split.test_size", "x")
    with pytest.raises(ParamsError) as info:
        parse_params(bad)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert "base.threshold" in lines[0] and "split.test_size" in lines[1]


def test_the_shipped_values_are_in_range_and_the_edges_hold(raw):
    params = parse_params(raw)  # the shipped file passes
    assert params.base.threshold == raw["base"]["threshold"]
    for key, (low, high, low_open, high_open) in RANGES.items():
        for edge, is_open in ((low, low_open), (high, high_open)):
            if edge is None:
                continue
            candidate = edited(raw, key, edge)
            try:
                parse_params(candidate)
                accepted = True
            except ParamsError as exc:
                accepted = f"{key} is {edge!r}, out of its range" not in str(exc)
            assert accepted != is_open, (key, edge)
    for key, choices in CHOICES.items():
        for choice in choices:
            parse_params(edited(raw, key, choice))  # each choice is a valid value of its key


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("train.hist_gradient_boosting.max_depht", 3, "did you mean 'max_depth'?"),
        ("train.logistic_regression.C", -1.0, "The 'C' parameter of LogisticRegression"),
        ("train.hist_gradient_boosting.random_state", 1, "is no option of"),
    ],
)
def test_estimator_options_are_checked_against_the_estimator(raw, key, value, message):
    params = parse_params(edited(raw, key, value))
    found = check_params.problems(params)
    assert len(found) == 1 and message in found[0] and key.rsplit(".", 1)[0] in found[0]


def test_a_misspelled_column_gets_a_guess(raw, params):
    column = next(c for c in params.train.drop_columns or [params.base.target])
    typo = column[:-1]
    bad = edited(raw, "train.drop_columns", [*params.train.drop_columns, typo])
    found = check_params.problems(parse_params(bad))
    assert found and f"names '{typo}'" in found[0] and f"did you mean '{column}'?" in found[0]


def test_the_command_prints_one_error_line_per_problem_and_writes_nothing(raw, tmp_path, root):
    bad = edited(edited(raw, "base.threshold", "0.1"), "split.test_size", 5)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(bad))
    out = tmp_path / "checked.txt"
    done = subprocess.run(
        [sys.executable, "-m", "tabml.check_params", "--params", str(path), "--out", str(out)],
        capture_output=True, text=True, cwd=root, check=False,
    )  # fmt: skip
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR:")]
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert len(errors) == 2 and all(str(path) in line for line in errors)
    assert not out.exists()
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(raw))
    subprocess.run(
        [sys.executable, "-m", "tabml.check_params", "--params", str(good), "--out", str(out)],
        check=True, cwd=root, capture_output=True,
    )  # fmt: skip
    assert out.read_text() == check_params.PASSED


@pytest.mark.parametrize("text", ["base: [1, 2\n", "- a\n- b\n", "base: {seed: 1}\n"])
def test_unreadable_files_are_one_line(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert str(path) in str(info.value).splitlines()[0]


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ParamsError, match="does not exist"):
        load_params(tmp_path / "none.yaml")


def test_mixed_types_in_lists_are_refused(raw):
    for key, value in itertools.product(["train.drop_columns", "drift.exclude"], [[1], [None]]):
        with pytest.raises(ParamsError, match=key):
            parse_params(edited(raw, key, value))
