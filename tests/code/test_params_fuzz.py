"""Generated params files: any edit of the shipped file either loads, with the values as written,
or fails with lines that each name the file and a key; never another exception."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tabml import check_params
from tabml.params import ParamsError, parse_params

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
KEYS = sorted(
    (section, key)
    for section, values in SHIPPED.items()
    if isinstance(values, dict)
    for key in values
)
SECTIONS = sorted(SHIPPED)

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.one_of(st.text(max_size=6), st.integers()), max_size=3),
    st.dictionaries(
        st.text(max_size=6), st.one_of(st.integers(), st.text(max_size=4)), max_size=2
    ),
)
# An edit: set a key to a value, or remove a key, or remove a section.
EDITS = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(KEYS), VALUES),
    st.tuples(st.just("drop"), st.sampled_from(KEYS), st.none()),
    st.tuples(st.just("drop-section"), st.sampled_from(SECTIONS), st.none()),
)


def apply(edits) -> dict:
    raw = copy.deepcopy(SHIPPED)
    for kind, where, value in edits:
        if kind == "drop-section":
            raw.pop(where, None)
            continue
        section, key = where
        if not isinstance(raw.get(section), dict):
            continue
        if kind == "set":
            raw[section][key] = value
        else:
            raw[section].pop(key, None)
    return raw


def same(written, loaded) -> bool:
    if isinstance(written, list):
        return tuple(written) == loaded
    if isinstance(written, float) and math.isnan(written):
        return False  # a NaN is never a valid value
    return written == loaded


@settings(max_examples=300, deadline=None)
@given(st.lists(EDITS, min_size=1, max_size=4))
def test_any_edit_loads_as_written_or_fails_naming_keys(edits):
    raw = apply(edits)
    try:
        params = parse_params(raw)
    except ParamsError as exc:
        lines = str(exc).splitlines()
        assert lines
        for line in lines:
            assert line.startswith("params.yaml: ")
            assert any(f"{name}." in line or f"'{name}'" in line for name in SECTIONS), line
        return
    for section, values in raw.items():
        for key, written in values.items():
            assert same(written, getattr(getattr(params, section), key)), (section, key)
    assert all(isinstance(problem, str) for problem in check_params.problems(params))
