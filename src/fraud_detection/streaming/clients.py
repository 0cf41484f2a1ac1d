"""kafka-python clients that connect within a bounded time and fail naming the servers.

kafka-python 3 connects in the client constructors and raises ``KafkaTimeoutError``
after ``bootstrap_timeout_ms``. Every client of the
project is created here, so an unreachable cluster always reads the same way: which
servers, how long we waited, what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from kafka import KafkaAdminClient
from kafka.errors import KafkaConfigurationError, KafkaError, KafkaTimeoutError

DEFAULT_BOOTSTRAP_TIMEOUT_MS = 10_000

Client = TypeVar("Client")


class KafkaConnectionError(RuntimeError):
    """No broker answered, or the client settings are invalid; the message says which."""


def servers_text(bootstrap_servers: str | list[str]) -> str:
    """Bootstrap servers as one comma-separated string, for messages."""
    if isinstance(bootstrap_servers, str):
        return bootstrap_servers
    return ",".join(bootstrap_servers)


def client_settings(credentials: Mapping[str, Any] | None) -> dict[str, Any]:
    """Credentials as kafka-python settings: unset (``None``) entries are left out, so
    ``${oc.env:VAR,null}`` in credentials.yml falls back to the client's default."""
    return {key: value for key, value in (credentials or {}).items() if value is not None}


def connect(
    client_class: type[Client],
    bootstrap_servers: str | list[str],
    credentials: Mapping[str, Any] | None = None,
    **config: Any,
) -> Client:
    """Creates a kafka-python client, bounded by ``bootstrap_timeout_ms``.

    Args:
        client_class: ``KafkaConsumer``, ``KafkaProducer`` or ``KafkaAdminClient``.
        bootstrap_servers: ``host:port`` string (comma-separated) or list.
        credentials: Security settings (``security_protocol``, ``sasl_*``, ``ssl_*``).
        **config: Other client settings; ``bootstrap_timeout_ms`` defaults to 10 s.

    Raises:
        KafkaConnectionError: No broker answered in time, or a setting is invalid.
    """
    settings = {
        "bootstrap_timeout_ms": DEFAULT_BOOTSTRAP_TIMEOUT_MS,
        **client_settings(credentials),
        **config,
    }
    servers = servers_text(bootstrap_servers)
    try:
        return client_class(bootstrap_servers=bootstrap_servers, **settings)
    except KafkaTimeoutError as exc:
        seconds = settings["bootstrap_timeout_ms"] / 1000
        raise KafkaConnectionError(
            f"No Kafka broker answered at {servers} within {seconds:g}s ({type(exc).__name__}). "
            "Start the local broker with `scripts/kafka.sh start`, or set "
            "KAFKA_BOOTSTRAP_SERVERS (and the security settings in credentials.yml) "
            "to a reachable cluster."
        ) from exc
    except (KafkaConfigurationError, ValueError, TypeError) as exc:
        raise KafkaConnectionError(f"Invalid Kafka client settings for {servers}: {exc}") from exc
    except KafkaError as exc:
        raise KafkaConnectionError(f"Cannot connect to Kafka at {servers}: {exc!r}") from exc


def check_kafka(section: Mapping[str, Any]) -> list[str]:
    """Start-up check: the bootstrap servers answer a metadata request in time.

    Args:
        section: ``startup_validation.kafka`` from ``validation.yml``:
            ``bootstrap_servers`` (required), ``timeout_s`` (default 10) and
            ``credentials`` (the ``kafka`` entry of credentials.yml, resolved).

    Returns:
        Problems found, empty when a broker answered.
    """
    unknown = sorted(set(section) - {"bootstrap_servers", "timeout_s", "credentials"})
    if unknown:
        return [
            f"Unknown key(s) {unknown} in startup_validation.kafka; "
            "expected bootstrap_servers, timeout_s, credentials."
        ]
    servers = section.get("bootstrap_servers")
    if not servers:
        return [
            "startup_validation.kafka.bootstrap_servers is empty: "
            "set KAFKA_BOOTSTRAP_SERVERS or the value in validation.yml."
        ]
    credentials = section.get("credentials") or {}
    if not isinstance(credentials, Mapping):
        return [
            f"startup_validation.kafka.credentials names {credentials!r}, which is not an entry of "
            "credentials.yml in this environment: add it or remove the key."
        ]
    timeout_ms = int(float(section.get("timeout_s", 10)) * 1000)
    try:
        admin = connect(
            KafkaAdminClient,
            servers,
            credentials,
            client_id="fraud-detection-startup-check",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=max(timeout_ms, 1000),
        )
    except KafkaConnectionError as exc:
        return [str(exc)]
    admin.close()
    return []
