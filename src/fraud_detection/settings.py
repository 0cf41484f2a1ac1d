"""Project settings: hooks, config loader and resolvers."""

from omegaconf.resolvers import oc

from fraud_detection.alerting import AlertingHook
from fraud_detection.hooks import KafkaOffsetCommitHook, StartupValidationHook

HOOKS = (StartupValidationHook(), KafkaOffsetCommitHook(), AlertingHook())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # `oc.env` is registered for every config file (not only credentials) so that
    # environments can take paths and endpoints from the environment; secrets still
    # belong in credentials.yml only.
    "custom_resolvers": {"oc.env": oc.env},
    # Environments override single parameters (e.g. split.test_start) without
    # repeating the whole group.
    "merge_strategy": {"parameters": "soft", "validation": "soft", "alerting": "soft"},
    "config_patterns": {
        "validation": ["validation*", "validation*/**"],
        "alerting": ["alerting*", "alerting*/**"],
    },
}
