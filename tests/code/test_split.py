from dataclasses import replace

import pytest

from tabml.io import DataError
from tabml.split import split


def with_split(params, **changes):
    return replace(params, split=replace(params.split, **changes))


def test_time_split_keeps_time_order(bank, params):
    train, valid, test = split(
        bank.sample(frac=1.0, random_state=0), with_split(params, strategy="time")
    )
    assert train["seq"].max() < valid["seq"].min() and valid["seq"].max() < test["seq"].min()
    assert len(train) + len(valid) + len(test) == len(bank)
    assert len(test) == round(len(bank) * params.split.test_size)


def test_stratified_split_keeps_the_label_rate(bank, params):
    train, valid, test = split(bank, with_split(params, strategy="stratified"))
    rates = [(part["y"] == "yes").mean() for part in (train, valid, test)]
    assert max(rates) - min(rates) < 0.002
    assert set(train["seq"]).isdisjoint(test["seq"]) and set(valid["seq"]).isdisjoint(test["seq"])
    assert len(train) + len(valid) + len(test) == len(bank)
    # shuffled: the test set covers the whole period
    assert test["seq"].min() < len(bank) * 0.1 and test["seq"].max() > len(bank) * 0.9


def test_stratified_split_is_reproducible(tiny, params):
    cfg = with_split(params, strategy="stratified")
    first, second = split(tiny, cfg), split(tiny, cfg)
    assert all(a["seq"].tolist() == b["seq"].tolist() for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"strategy": "random"}, "expected one of"),
        ({"valid_size": 0.6, "test_size": 0.5}, "sum to < 1"),
    ],
)
def test_bad_settings_are_named(tiny, params, changes, message):
    with pytest.raises(DataError, match=message):
        split(tiny, with_split(params, **changes))


def test_too_few_rows(tiny, params):
    with pytest.raises(DataError, match="3 rows are too few"):
        split(tiny.head(3), params)
