"""The SparkSession, built from the ``spark`` config group (``conf/spark/spark.yml``)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)


def _spark_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def spark_session(settings: Mapping[str, Any], app_name: str = "fraud_detection") -> SparkSession:
    """Returns the process' SparkSession, created with ``settings`` (Spark keys such as
    ``spark.master``) if none runs yet.

    Python workers run this interpreter unless ``spark.pyspark.python`` (or
    ``PYSPARK_PYTHON``) says otherwise: on a local master they need the project's
    packages, which live here; on a cluster, point it at the executors' Python.

    Raises:
        ImportError: When pyspark is not installed, naming the extra that brings it.
    """
    try:
        from pyspark import SparkConf
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(
            "The spark environment needs pyspark: pip install 'fraud_detection[spark]'"
        ) from exc
    # YAML booleans become Spark's 'true'/'false' (str(True) is 'True', which PySpark's
    # own checks, e.g. of Arrow, do not read as enabled).
    conf = {str(k): _spark_value(v) for k, v in settings.items()}
    if "spark.pyspark.python" in conf:
        os.environ.setdefault("PYSPARK_PYTHON", conf["spark.pyspark.python"])
    # PySpark picks its workers' Python from this variable, not from the config.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(conf.pop("spark.app.name", app_name))
    session = builder.config(conf=SparkConf().setAll(list(conf.items()))).getOrCreate()
    session.sparkContext.setLogLevel(conf.get("spark.log.level", "WARN"))
    logger.info("SparkSession on %s (Spark %s)", session.sparkContext.master, session.version)
    return session
