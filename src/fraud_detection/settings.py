"""Project settings: hooks and the config loader (its arguments live in ``config``)."""

from fraud_detection.alerting import AlertingHook
from fraud_detection.config import CONFIG_LOADER_ARGS
from fraud_detection.hooks import KafkaOffsetCommitHook, SparkHook, StartupValidationHook

HOOKS = (StartupValidationHook(), SparkHook(), KafkaOffsetCommitHook(), AlertingHook())

__all__ = ["CONFIG_LOADER_ARGS", "HOOKS"]
