# The project inside Apache Airflow 3: the image every Airflow service of
# docker-compose.yml runs (api-server, scheduler, dag-processor, triggerer), and the
# transaction producer. Build: docker compose build (or docker build -t fraud-detection .).
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11

# The project's wheel, built without Airflow's packages in the way.
FROM python:${PYTHON_VERSION}-slim AS wheel
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
# Arguments declared before the first FROM must be declared again to be used here.
ARG AIRFLOW_VERSION
ENV FRAUD_DETECTION_PROJECT_PATH=/opt/fraud-detection \
    KEDRO_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=1 \
    KEDRO_LOGGING_MODULE_ALLOWLIST=pythonjsonlogger \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/fraud-detection/airflow_dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=false

# Airflow stays at the image's version (its providers, e.g. the FAB auth manager, are
# pinned with it); pip check fails the build on any conflict with the project's pins.
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /tmp/wheels/*.whl \
    && pip check

# The Kedro project the DAG runs: configuration, the generated DAG, writable data/logs.
USER root
COPY --chown=airflow:root pyproject.toml .telemetry /opt/fraud-detection/
COPY --chown=airflow:root conf /opt/fraud-detection/conf
COPY --chown=airflow:root airflow_dags /opt/fraud-detection/airflow_dags
RUN mkdir -p /opt/fraud-detection/data /opt/fraud-detection/logs \
    && chown -R airflow:root /opt/fraud-detection/data /opt/fraud-detection/logs
USER airflow
WORKDIR /opt/fraud-detection
