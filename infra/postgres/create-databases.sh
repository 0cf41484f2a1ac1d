#!/usr/bin/env bash
# First start of the PostgreSQL container (docker-entrypoint-initdb.d): one database for
# Airflow's metadata and one for MLflow's tracking store and registry, both owned by
# POSTGRES_USER.
set -euo pipefail
for database in airflow mlflow; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -c "CREATE DATABASE ${database} OWNER \"${POSTGRES_USER}\";"
done
