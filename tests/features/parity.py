"""Comparing feature tables from two engines (pandas, online, Spark).

Every engine's output has exactly the columns ``feature_names(spec)``, in order; the
same rows (matched by transaction id, in any order); window counts equal exactly and
every other number within 1e-9 (relative above 1): engines may add in a different
order, never count differently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud_detection import schema
from fraud_detection.features import Aggregation, FeatureSpec, feature_names


def count_columns(spec: FeatureSpec) -> list[str]:
    """The window-count columns of ``spec`` (compared exactly)."""

    def counts(agg: Aggregation) -> list[str]:
        return [agg.count_column(w) for w in agg.windows]

    return [name for agg in spec.aggregations for name in counts(agg)]


def assert_columns_are_spec(frame: pd.DataFrame, spec: FeatureSpec) -> None:
    """The frame's columns are ``feature_names(spec)``, in order, nothing else."""
    expected = feature_names(spec)
    got = list(frame.columns)
    assert got == expected, (
        f"missing {sorted(set(expected) - set(got))}, extra {sorted(set(got) - set(expected))}"
        if set(got) != set(expected)
        else f"same columns in another order: {got}"
    )


def assert_frames_match(
    got: pd.DataFrame,
    expected: pd.DataFrame,
    spec: FeatureSpec,
    *,
    tolerance: float = 1e-9,
    check_dtypes: bool = True,
) -> None:
    """``got`` and ``expected`` are the same feature table of ``spec``.

    Args:
        got: The engine under test's output.
        expected: The reference output (usually ``create_features``).
        spec: The feature spec both were built from.
        tolerance: Absolute and relative tolerance of the non-count numbers.
        check_dtypes: Whether column dtypes must match too (an engine whose frame
            comes from another library, such as Spark's ``toPandas``, may pass False).
    """
    assert_columns_are_spec(got, spec)
    assert_columns_are_spec(expected, spec)
    ids = got[schema.TRANSACTION_ID].astype("str")
    assert ids.is_unique, "repeated transaction ids"
    assert sorted(ids) == sorted(expected[schema.TRANSACTION_ID].astype("str")), "different rows"
    expected = (
        expected.assign(_id=expected[schema.TRANSACTION_ID].astype("str"))
        .set_index("_id")
        .loc[ids]
        .reset_index(drop=True)
    )
    got = got.reset_index(drop=True)
    if check_dtypes:
        differ = got.dtypes[got.dtypes != expected.dtypes]
        assert differ.empty, (
            f"dtypes differ: {differ.to_dict()} vs {expected.dtypes[differ.index].to_dict()}"
        )
    counts = set(count_columns(spec))
    for column in got.columns:
        if column == schema.LABEL or not pd.api.types.is_numeric_dtype(expected[column]):
            assert got[column].astype("str").tolist() == expected[column].astype("str").tolist(), (
                column
            )
        elif column in counts:
            np.testing.assert_array_equal(
                got[column].to_numpy(float), expected[column].to_numpy(float), err_msg=column
            )
        else:
            np.testing.assert_allclose(
                got[column].to_numpy(float),
                expected[column].to_numpy(float),
                rtol=tolerance,
                atol=tolerance,
                err_msg=column,
            )
