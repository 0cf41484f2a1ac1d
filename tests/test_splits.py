import pandas as pd
import pytest

from fraud_detection.features import create_features
from fraud_detection.splits import (
    SplitParams,
    fold_indices,
    known_compromised,
    plan_split,
    split_out_of_time,
)
from tests.conftest import base_parameters, make_transactions

FEATURES = base_parameters("features")
SPLIT = base_parameters("split")

HANDBOOK = {
    **SPLIT,
    "train_days": 7,
    "delay_days": 7,
    "test_days": 7,
    "test_start": "2018-08-08",
    "n_folds": 4,
    "fold_days": 7,
}


def test_handbook_protocol_is_expressible():
    plan = plan_split(
        pd.Timestamp("2018-04-01"), pd.Timestamp("2018-09-30"), SplitParams.from_dict(HANDBOOK)
    )
    assert (
        plan["train_start"] == "2018-07-25 00:00:00" and plan["train_end"] == "2018-08-01 00:00:00"
    )
    assert plan["test_start"] == "2018-08-08 00:00:00" and plan["test_end"] == "2018-08-15 00:00:00"
    first = plan["folds"][0]
    # As in the Handbook's model selection: train from 2018-07-11, validate 07-25 to 07-31.
    assert (
        first["train_start"] == "2018-07-11 00:00:00"
        and first["valid_start"] == "2018-07-25 00:00:00"
    )
    assert plan["folds"][3]["valid_end"] == "2018-07-11 00:00:00"


def test_windows_never_overlap_in_time_order():
    plan = plan_split(
        pd.Timestamp("2025-01-01"),
        pd.Timestamp("2025-04-30"),
        SplitParams.from_dict(base_parameters("split")),
    )
    for f in plan["folds"]:
        assert (
            f["train_end"]
            < f["valid_start"]
            < f["valid_end"]
            <= plan["train_end"]
            < plan["test_start"]
        )


def test_too_little_history_says_how_much_is_needed():
    with pytest.raises(
        ValueError,
        match=(
            r"needs data from .* \(56 days: 4 folds of 7 days"
            r".*covers 2025-01-01 to 2025-01-20 \(20 days\)"
        ),
    ):
        plan_split(
            pd.Timestamp("2025-01-01"),
            pd.Timestamp("2025-01-20"),
            SplitParams.from_dict(base_parameters("split")),
        )


def test_unknown_key_is_named():
    with pytest.raises(ValueError, match="test_day"):
        SplitParams.from_dict({"test_day": 3})


def test_split_keeps_delay_gap_out_of_both_sets():
    features = create_features(make_transactions(n=3000, days=60, seed=1), FEATURES)
    params = {
        **SPLIT,
        "train_days": 7,
        "delay_days": 7,
        "test_days": 7,
        "n_folds": 2,
        "fold_days": 7,
        "remove_known_compromised": False,
    }
    dev, test, plan = split_out_of_time(features, params)
    assert dev["timestamp"].max() < pd.Timestamp(plan["train_end"])
    assert test["timestamp"].min() >= pd.Timestamp(plan["test_start"])
    assert pd.Timestamp(plan["test_start"]) - pd.Timestamp(plan["train_end"]) == pd.Timedelta("7D")
    assert plan["counts"]["test_rows"] == len(test)


def test_known_compromised_cards_removed_from_later_days_only():
    tx = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2025-01-01", "2025-01-09", "2025-01-10", "2025-01-10"]),
            "customer_id": ["c1", "c1", "c1", "c2"],
            "is_fraud": [1, 0, 0, 0],
        }
    )
    # Fraud on Jan 1 is known from Jan 9 (delay 7 days, plus the day itself).
    flags = known_compromised(
        tx, pd.Timestamp("2025-01-01"), pd.Timestamp("2025-01-08"), delay_days=7
    )
    assert flags.tolist() == [False, True, True, False]


def test_folds_validate_after_they_train():
    features = create_features(make_transactions(n=3000, days=60, seed=1), FEATURES)
    dev, _, plan = split_out_of_time(
        features, {**SPLIT, "n_folds": 2, "remove_known_compromised": False}
    )
    for (tr, va), f in zip(fold_indices(dev, plan), plan["folds"], strict=True):
        assert dev.iloc[tr]["timestamp"].max() < dev.iloc[va]["timestamp"].min()
        assert dev.iloc[va]["timestamp"].min() >= pd.Timestamp(f["valid_start"])


def test_reduction_keeps_every_fraud_and_weights_sampled_genuine_rows():
    from fraud_detection.splits import reduce_development

    dev = make_transactions(n=4000, seed=7, fraud_rate=0.05)
    reduced = reduce_development(dev, 0.25, seed=1)
    assert reduced["is_fraud"].sum() == dev["is_fraud"].sum()
    genuine = reduced["is_fraud"] == 0
    assert (reduced.loc[genuine, "sample_weight"] == 4.0).all()
    assert (reduced.loc[~genuine, "sample_weight"] == 1.0).all()
    # The weighted genuine count estimates the full one.
    assert reduced.loc[genuine, "sample_weight"].sum() == pytest.approx(
        (dev["is_fraud"] == 0).sum(), rel=0.1
    )
    assert reduce_development(dev, 1.0, seed=1) is dev
