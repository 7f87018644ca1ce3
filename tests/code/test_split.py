from dataclasses import replace

import pytest

from tabml.io import DataError
from tabml.split import split


def with_split(params, **changes):
    return replace(params, split=replace(params.split, **changes))


def test_time_split_keeps_time_order(data, params):
    time = params.base.time_column
    train, valid, test = split(
        data.sample(frac=1.0, random_state=0), with_split(params, strategy="time")
    )
    assert train[time].max() < valid[time].min() and valid[time].max() < test[time].min()
    assert len(train) + len(valid) + len(test) == len(data)
    assert len(test) == round(len(data) * params.split.test_size)


def test_stratified_split_keeps_the_label_rate(data, params):
    time, target = params.base.time_column, params.base.target
    train, valid, test = split(data, with_split(params, strategy="stratified"))
    rates = [(part[target] == params.base.positive_label).mean() for part in (train, valid, test)]
    # stratified: the shares differ by rounding only, one row in the smallest part
    assert max(rates) - min(rates) <= 2 / min(len(valid), len(test))
    assert set(train[time]).isdisjoint(test[time]) and set(valid[time]).isdisjoint(test[time])
    assert len(train) + len(valid) + len(test) == len(data)
    # shuffled: the test set covers the whole period
    first, last = data[time].min(), data[time].max()
    assert test[time].min() < first + (last - first) * 0.1
    assert test[time].max() > first + (last - first) * 0.9


def test_stratified_split_is_reproducible(tiny, params):
    time = params.base.time_column
    cfg = with_split(params, strategy="stratified")
    first, second = split(tiny, cfg), split(tiny, cfg)
    assert all(a[time].tolist() == b[time].tolist() for a, b in zip(first, second, strict=True))


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
