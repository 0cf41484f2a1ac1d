import numpy as np
import pandas as pd
import pytest

from fraud_detection.features import (
    FeatureParams,
    create_features,
    feature_columns,
)
from tests.conftest import (
    HANDBOOK_MAPPING,
    base_parameters,
    handbook_dir,
    make_transactions,
)

FEATURES = base_parameters("features")

PARAMS = {
    **FEATURES,
    "customer_windows": ["1h", "1D", "7D"],
    "terminal_windows": ["1D", "7D"],
    "label_delay": "7D",
}


def _tx(rows):
    df = pd.DataFrame(
        rows,
        columns=["transaction_id", "timestamp", "customer_id", "terminal_id", "amount", "is_fraud"],
    )
    df["timestamp"] = pd.to_datetime(df["timestamp"]).astype("datetime64[ns]")
    for col, value in {
        "merchant_category": "grocery",
        "currency": "EUR",
        "country": "FR",
        "channel": "pos",
    }.items():
        df[col] = value
    return df


def test_customer_windows_by_hand():
    tx = _tx(
        [
            ("a", "2025-01-01 10:00", "c1", "m1", 10.0, 0),
            ("b", "2025-01-01 10:30", "c1", "m2", 30.0, 0),
            ("c", "2025-01-01 12:00", "c1", "m1", 50.0, 0),
            ("d", "2025-01-03 12:00", "c1", "m1", 70.0, 0),
            ("e", "2025-01-01 10:45", "c2", "m1", 99.0, 1),
        ]
    )
    f = create_features(tx, PARAMS).set_index("transaction_id")
    assert f.loc["b", "customer_nb_tx_1h"] == 2 and f.loc["b", "customer_avg_amount_1h"] == 20.0
    assert f.loc["c", "customer_nb_tx_1h"] == 1
    assert f.loc["c", "customer_nb_tx_1d"] == 3 and f.loc[
        "c", "customer_avg_amount_1d"
    ] == pytest.approx(30.0)
    assert f.loc["c", "customer_std_amount_1d"] == pytest.approx(20.0)
    assert f.loc["d", "customer_nb_tx_1d"] == 1 and f.loc["d", "customer_nb_tx_7d"] == 4
    assert f.loc["b", "customer_seconds_since_prev_tx"] == 1800
    assert f.loc["e", "customer_nb_tx_7d"] == 1  # other customers never count
    # Terminal m1 saw a fraud on Jan 1; its label is only usable 7 days later.
    assert f.loc["d", "terminal_nb_tx_7d"] == 0 and f.loc["d", "terminal_risk_7d"] == 0


def test_delayed_terminal_risk_uses_labels_exactly_delay_old():
    tx = _tx(
        [
            ("a", "2025-01-01 10:00", "c1", "m1", 10.0, 1),
            ("b", "2025-01-02 10:00", "c2", "m1", 10.0, 0),
            ("c", "2025-01-08 09:59", "c3", "m1", 10.0, 0),  # a's label not known yet
            ("d", "2025-01-08 10:00", "c4", "m1", 10.0, 0),  # exactly 7 days: known
            ("e", "2025-01-09 10:00", "c5", "m1", 10.0, 0),
        ]
    )
    f = create_features(tx, PARAMS).set_index("transaction_id")
    assert f.loc["c", "terminal_nb_tx_7d"] == 0
    assert f.loc["d", "terminal_nb_tx_7d"] == 1 and f.loc["d", "terminal_risk_7d"] == 1.0
    assert f.loc["e", "terminal_nb_tx_7d"] == 2 and f.loc["e", "terminal_risk_7d"] == 0.5
    assert f.loc["e", "terminal_nb_tx_1d"] == 1 and f.loc["e", "terminal_risk_1d"] == 0.0


def test_same_timestamp_rows_arriving_later_are_not_seen():
    tx = _tx(
        [
            ("a", "2025-01-01 10:00", "c1", "m1", 10.0, 0),
            ("b", "2025-01-01 10:00", "c1", "m1", 20.0, 0),
        ]
    )
    f = create_features(tx, PARAMS).set_index("transaction_id")
    assert f.loc["a", "customer_nb_tx_1h"] == 1 and f.loc["b", "customer_nb_tx_1h"] == 2


# The base features, and with the optional ones on (terminal amounts, recency).
WITH_OPTIONAL = [
    pytest.param({}, id="base"),
    pytest.param(
        {"terminal_amount_windows": ["7D", "30D"], "customer_terminal_recency": True},
        id="optional",
    ),
]


@pytest.mark.parametrize("optional", WITH_OPTIONAL)
def test_changing_or_adding_future_rows_never_changes_earlier_features(optional):
    FEATURES = {**base_parameters("features"), **optional}  # noqa: N806 (the module's name)
    tx = make_transactions(n=600, days=40, seed=3)
    cutoff = pd.Timestamp("2025-01-25")
    base = create_features(tx, FEATURES).set_index("transaction_id")
    future = tx["timestamp"] > cutoff
    changed = tx.copy()
    changed.loc[future, "amount"] = changed.loc[future, "amount"] * 7 + 1
    changed.loc[future, "is_fraud"] = 1 - changed.loc[future, "is_fraud"]
    extra = make_transactions(n=200, days=40, seed=9)
    extra = extra[extra["timestamp"] > cutoff].assign(
        transaction_id=lambda d: "X" + d["transaction_id"]
    )
    changed = pd.concat([changed, extra], ignore_index=True)
    after = create_features(changed, FEATURES).set_index("transaction_id")
    past = base.index[base["timestamp"] <= cutoff]
    numeric, _ = feature_columns(base)
    assert len(past) > 300
    pd.testing.assert_frame_equal(
        base.loc[past, numeric], after.loc[past, numeric], check_exact=True
    )


@pytest.mark.parametrize("optional", WITH_OPTIONAL)
def test_labels_newer_than_the_delay_are_never_used(optional):
    FEATURES = {**base_parameters("features"), **optional}  # noqa: N806 (the module's name)
    tx = make_transactions(n=600, days=40, seed=4, fraud_rate=0.2)
    cutoff = pd.Timestamp("2025-01-30")
    base = create_features(tx, {**FEATURES, "label_delay": "7D"}).set_index("transaction_id")
    recent = tx["timestamp"] > cutoff - pd.Timedelta("7D")
    flipped = tx.copy()
    flipped.loc[recent, "is_fraud"] = 1 - flipped.loc[recent, "is_fraud"]
    after = create_features(flipped, {**FEATURES, "label_delay": "7D"}).set_index("transaction_id")
    upto = base.index[base["timestamp"] <= cutoff]
    numeric, _ = feature_columns(base)
    pd.testing.assert_frame_equal(
        base.loc[upto, numeric], after.loc[upto, numeric], check_exact=True
    )
    # ...while the flipped labels do reach rows more than a delay later.
    later = base.index[base["timestamp"] > cutoff + pd.Timedelta("1D")]
    assert not np.allclose(
        base.loc[later, "terminal_risk_7d"], after.loc[later, "terminal_risk_7d"]
    )


def test_label_and_label_revealing_extras_are_never_features(transactions):
    with_extra = transactions.assign(
        fraud_scenario=transactions["is_fraud"].map({0: "genuine", 1: "card_testing"}),
        TX_FRAUD_SCENARIO=transactions["is_fraud"],
    )
    features = create_features(with_extra, FEATURES)
    numeric, categorical = feature_columns(features)
    assert "is_fraud" not in numeric + categorical
    assert "fraud_scenario" not in features.columns and "TX_FRAUD_SCENARIO" not in features.columns
    assert not {"transaction_id", "customer_id", "terminal_id", "timestamp"} & set(
        numeric + categorical
    )


def test_bad_parameters_fail_with_the_key():
    with pytest.raises(ValueError, match="customer_window"):
        FeatureParams.from_dict({"customer_window": ["1D"]})
    with pytest.raises(
        ValueError, match="params:features.terminal_windows.0': invalid duration 'a week'"
    ):
        FeatureParams.from_dict(base_parameters("features", terminal_windows=["a week"]))
    with pytest.raises(ValueError, match="label_delay must be positive"):
        FeatureParams.from_dict(base_parameters("features", label_delay="0D"))


def test_create_features_does_not_mutate_input(transactions):
    shuffled = transactions.sample(frac=1.0, random_state=0)
    before = shuffled.copy()
    create_features(shuffled, FEATURES)
    pd.testing.assert_frame_equal(shuffled, before)


def test_reproduces_the_handbook_reference_features():
    """The Handbook's own April 2018 features, from its public benchmark.

    Definition difference: 12 April rows are 6 pairs of one customer's transactions
    in the same second. The Handbook orders each customer's rows with an unstable
    sort, so in 3 pairs the later-id row was counted before the earlier one; we order
    ties by arrival (transaction id), so a row never sees one that arrived after it.
    Those 6 rows differ by exactly one transaction in the customer windows; every
    other value matches to 1e-9.
    """
    folder = handbook_dir()
    from fraud_detection.quality import (
        standardise_columns,
        validate_transactions,
    )

    raw = pd.read_parquet(folder / "transactions.parquet")
    params = base_parameters("ingestion", column_mapping=HANDBOOK_MAPPING)
    valid, quarantine, _ = validate_transactions(standardise_columns(raw, params), params)
    assert quarantine.empty
    ours = create_features(
        valid, {**FEATURES, "customer_windows": ["1D", "7D", "30D"], "label_delay": "7D"}
    )
    ours["TRANSACTION_ID"] = ours["transaction_id"].astype("int64")
    ref = pd.read_parquet(folder / "reference_features_2018-04.parquet")
    merged = ref.merge(ours, on="TRANSACTION_ID", how="left", validate="one_to_one")
    assert len(merged) == len(ref) == 288_062
    pairs = {"TX_DURING_WEEKEND": "tx_during_weekend", "TX_DURING_NIGHT": "tx_during_night"}
    for w in (1, 7, 30):
        pairs[f"CUSTOMER_ID_NB_TX_{w}DAY_WINDOW"] = f"customer_nb_tx_{w}d"
        pairs[f"CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW"] = f"customer_avg_amount_{w}d"
        pairs[f"TERMINAL_ID_NB_TX_{w}DAY_WINDOW"] = f"terminal_nb_tx_{w}d"
        pairs[f"TERMINAL_ID_RISK_{w}DAY_WINDOW"] = f"terminal_risk_{w}d"
    tie = merged.duplicated(["CUSTOMER_ID", "TX_DATETIME"], keep=False)
    assert tie.sum() == 12
    for theirs, mine in pairs.items():
        diff = (merged[theirs].astype(float) - merged[mine].astype(float)).abs()
        assert diff[~tie].max() <= 1e-9, f"{mine} differs from {theirs} by up to {diff[~tie].max()}"
    for w in (1, 7, 30):
        counts = (
            merged.loc[tie, f"CUSTOMER_ID_NB_TX_{w}DAY_WINDOW"]
            - merged.loc[tie, f"customer_nb_tx_{w}d"]
        ).abs()
        assert set(counts) == {0.0, 1.0} and (counts == 1).sum() == 6
