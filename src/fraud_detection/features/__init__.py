"""Point-in-time transaction features: the one feature definition of the project.

``spec`` declares the features (:class:`FeatureSpec`, built from ``params:features``
by :func:`build_spec`; :func:`feature_names` is the column list every engine's output
equals). ``create_features`` (the pandas engine) builds the training and monitoring
feature table; ``OnlineFeatures`` (``features.online``) builds the same rows one
transaction at a time for the real-time scorer, with the same formulas.
"""

from fraud_detection.features.pandas_engine import (
    amount_moments,
    amount_vs_history,
    build_features,
    cleanse,
    create_features,
    feature_columns,
    feature_horizon,
    risk_share,
    seconds_since_previous,
    temporal_features,
)
from fraud_detection.features.spec import (
    ID_COLUMNS,
    TEMPORAL_FEATURES,
    Aggregation,
    FeatureParams,
    FeatureSpec,
    Measure,
    Window,
    build_spec,
    categorical_feature_names,
    computed_feature_names,
    feature_names,
    numeric_feature_names,
    passthrough_columns,
    window_suffix,
)

__all__ = [
    "ID_COLUMNS",
    "TEMPORAL_FEATURES",
    "Aggregation",
    "FeatureParams",
    "FeatureSpec",
    "Measure",
    "Window",
    "amount_moments",
    "amount_vs_history",
    "build_features",
    "build_spec",
    "categorical_feature_names",
    "cleanse",
    "computed_feature_names",
    "create_features",
    "feature_columns",
    "feature_horizon",
    "feature_names",
    "numeric_feature_names",
    "passthrough_columns",
    "risk_share",
    "seconds_since_previous",
    "temporal_features",
    "window_suffix",
]
