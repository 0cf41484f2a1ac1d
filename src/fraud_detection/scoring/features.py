"""The scorer's feature state: ``fraud_detection.features.online`` (re-exported here)."""

from fraud_detection.features.online import (
    FeatureBatch,
    OnlineFeatures,
    StateStats,
    TransactionRecords,
    clean_category,
)

__all__ = ["FeatureBatch", "OnlineFeatures", "StateStats", "TransactionRecords", "clean_category"]
