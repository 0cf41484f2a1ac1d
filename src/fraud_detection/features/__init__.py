"""Point-in-time transaction features: the one feature definition of the project.

``create_features`` (the pandas engine) builds the training and monitoring feature
table; the scorer's online engine reuses its formulas row by row, so both give the
same values for the same history.
"""

from fraud_detection.features.pandas_engine import (
    ID_COLUMNS,
    FeatureParams,
    amount_moments,
    amount_vs_history,
    cleanse,
    create_features,
    feature_columns,
    feature_horizon,
    risk_share,
    seconds_since_previous,
    temporal_features,
    window_suffix,
)

__all__ = [
    "ID_COLUMNS",
    "FeatureParams",
    "amount_moments",
    "amount_vs_history",
    "cleanse",
    "create_features",
    "feature_columns",
    "feature_horizon",
    "risk_share",
    "seconds_since_previous",
    "temporal_features",
    "window_suffix",
]
