"""Real-time scoring: ``fraud-detection-score`` reads transactions from Kafka, keeps the
feature state incrementally (``OnlineFeatures``), scores with the registry's champion
and produces predictions. See ``fraud_detection.scoring.service``."""
