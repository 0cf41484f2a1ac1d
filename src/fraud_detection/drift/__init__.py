"""Drift monitoring: reference profiles, drift statistics and the verdict.

``fraud_detection.drift.statistics`` profiles features and scores and compares windows
(numpy, pandas, scipy); ``fraud_detection.drift.verdict`` is the typed verdict, light
enough for the alerting callbacks. Import the submodule you need.
"""
