"""The Spark side of the project: the session, the ingestion checks, the out-of-time
split and the training reduction as Spark jobs (the features are
``fraud_detection.features.spark_engine``).

Every module imports pyspark lazily, inside its functions, so that the package imports
without it and the default environment never starts or imports Spark.
"""
