"""S3-compatible object store (MinIO in production, SeaweedFS locally): a client with
bounded timeouts built from the catalog's credentials, and the start-up check.

The credentials are the ``s3`` entry of ``credentials.yml``, in the form s3fs takes
(``key``, ``secret``, ``token``, ``endpoint_url``, ``client_kwargs``,
``config_kwargs``), so the check talks to exactly the store the catalog will use.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as EndpointUnreachableError

DEFAULT_TIMEOUT_S = 5.0
PROBE_PREFIX = ".fraud-detection-write-probe-"

# Error codes an S3 server answers with, and the fix to suggest. HEAD requests carry
# no code, only the HTTP status, so 403 and 404 are mapped too.
_KEYS_HINT = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (.env) to keys of this store"
_CREDENTIAL_ERRORS = {
    "InvalidAccessKeyId": "does not know the access key in AWS_ACCESS_KEY_ID",
    "SignatureDoesNotMatch": "rejects the secret in AWS_SECRET_ACCESS_KEY",
    "InvalidToken": "rejects the session token in AWS_SESSION_TOKEN",
    "ExpiredToken": "says the session token in AWS_SESSION_TOKEN has expired",
}
_MISSING_BUCKET_CODES = {"NoSuchBucket", "404"}
_DENIED_CODES = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled"}


class ObjectStoreSettingsError(ValueError):
    """The ``s3`` credentials entry is missing or malformed."""


def endpoint_of(credentials: Mapping[str, Any]) -> str | None:
    """The endpoint URL in s3fs-style credentials (top level or ``client_kwargs``)."""
    client_kwargs = credentials.get("client_kwargs") or {}
    return credentials.get("endpoint_url") or client_kwargs.get("endpoint_url")


def make_client(credentials: Mapping[str, Any], timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
    """A boto3 S3 client for s3fs-style credentials that gives up after ``timeout_s``.

    botocore's defaults retry a refused connection for about ten seconds and wait up
    to a minute for a silent one; a start-up check must answer faster than that.

    Args:
        credentials: The ``s3`` entry of ``credentials.yml``.
        timeout_s: Connect and read timeout; one attempt, no retries.

    Raises:
        ObjectStoreSettingsError: ``credentials`` is not a mapping.
    """
    if not isinstance(credentials, Mapping):
        raise ObjectStoreSettingsError(
            "the credentials must be an entry of credentials.yml (key, secret, endpoint_url), "
            f"got {credentials!r}"
        )
    client_kwargs = dict(credentials.get("client_kwargs") or {})
    config_kwargs = dict(credentials.get("config_kwargs") or {})
    s3_config = dict(config_kwargs.get("s3") or {})
    s3_config.setdefault("addressing_style", "path")
    config = Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"max_attempts": 1, "mode": "standard"},
        s3=s3_config,
        signature_version=config_kwargs.get("signature_version"),
    )
    return boto3.session.Session().client(
        "s3",
        aws_access_key_id=credentials.get("key"),
        aws_secret_access_key=credentials.get("secret"),
        aws_session_token=credentials.get("token"),
        endpoint_url=endpoint_of(credentials),
        region_name=client_kwargs.get("region_name") or "us-east-1",
        config=config,
    )


def _error_code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return str(
        error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )


def describe_error(exc: Exception, endpoint: str, bucket: str, action: str) -> str:
    """One sentence for a failed S3 call: what is wrong and what to change.

    Args:
        exc: The botocore exception.
        endpoint: Endpoint URL, for the message.
        bucket: Bucket the call was about.
        action: What was attempted (``list``, ``write to``, ``delete from``).
    """
    where = f"Object store {endpoint}"
    if isinstance(exc, EndpointUnreachableError):
        return (
            f"{where} is not reachable ({type(exc).__name__}): start it (`scripts/s3.sh start` "
            "locally) or set AWS_ENDPOINT_URL_S3 to the address of the store."
        )
    if isinstance(exc, ReadTimeoutError | ConnectionClosedError):
        return (
            f"{where} accepted the connection but did not answer ({type(exc).__name__}): "
            "check the server's health and logs."
        )
    if isinstance(exc, NoCredentialsError):
        return f"{where}: no access key configured: {_KEYS_HINT}."
    if isinstance(exc, ClientError):
        return _describe_client_error(exc, endpoint, bucket, action)
    return f"{where}: cannot {action} bucket '{bucket}': {type(exc).__name__}: {exc}."


def _describe_client_error(exc: ClientError, endpoint: str, bucket: str, action: str) -> str:
    """``describe_error`` for an answer of the server (an S3 error code)."""
    code = _error_code(exc)
    if code in _CREDENTIAL_ERRORS:
        return f"Object store {endpoint} {_CREDENTIAL_ERRORS[code]} ({code}): {_KEYS_HINT}."
    if code in _MISSING_BUCKET_CODES:
        return (
            f"Bucket '{bucket}' does not exist at {endpoint} (NoSuchBucket): create it "
            "(`mc mb`, or S3_BUCKETS for `scripts/s3.sh start`) "
            "or set S3_BUCKET to an existing bucket."
        )
    if code in _DENIED_CODES:
        return (
            f"Object store {endpoint} denies the configured keys permission to {action} "
            f"bucket '{bucket}' ({code}): grant them read and write access to the bucket, "
            "or use keys that have it."
        )
    message = exc.response.get("Error", {}).get("Message", "")
    return (
        f"Object store {endpoint} refused to {action} bucket '{bucket}': {code} {message}".rstrip()
        + "."
    )


def _is_store_wide(exc: Exception) -> bool:
    """Whether a failure is about the endpoint or the keys rather than one bucket."""
    if isinstance(exc, ClientError):
        return _error_code(exc) in _CREDENTIAL_ERRORS
    return True


def _probe(client: Any, bucket: str, endpoint: str) -> tuple[str | None, bool]:
    """The first failing step's problem (or ``None``) and whether it is store-wide."""
    probe_key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    steps = (
        ("list", lambda: client.list_objects_v2(Bucket=bucket, MaxKeys=1)),
        ("write to", lambda: client.put_object(Bucket=bucket, Key=probe_key, Body=b"ok")),
        ("delete from", lambda: client.delete_object(Bucket=bucket, Key=probe_key)),
    )
    for action, call in steps:
        try:
            call()
        except (BotoCoreError, ClientError) as exc:
            return describe_error(exc, endpoint, bucket, action), _is_store_wide(exc)
    return None, False


def probe_bucket(client: Any, bucket: str, endpoint: str) -> list[str]:
    """Checks that ``bucket`` exists and that the client's keys may list, write and
    delete in it, with one small object that is removed again.

    Args:
        client: A boto3 S3 client (``make_client``).
        bucket: Bucket name.
        endpoint: Endpoint URL, for messages.

    Returns:
        At most one problem: the first step that failed, as a sentence.
    """
    problem, _ = _probe(client, bucket, endpoint)
    return [problem] if problem else []


def check_object_store(section: Mapping[str, Any]) -> list[str]:
    """Start-up check: the endpoint answers, the keys are valid, and every bucket
    exists and is writable.

    Args:
        section: ``startup_validation.object_store`` from ``validation.yml``:
            ``buckets`` (list, required), ``credentials`` (the ``s3`` entry of
            credentials.yml, resolved by the hook) and ``timeout_s`` (default 5).

    Returns:
        Problems found, empty when the store is fit to use. A wrong endpoint or wrong
        keys are reported once, not once per bucket.
    """
    unknown = sorted(set(section) - {"buckets", "credentials", "timeout_s"})
    if unknown:
        return [
            f"Unknown key(s) {unknown} in startup_validation.object_store; "
            "expected buckets, credentials, timeout_s."
        ]
    buckets = [b for b in section.get("buckets") or [] if b]
    if not buckets:
        return [
            "startup_validation.object_store.buckets is empty: "
            "list the buckets the catalog uses (S3_BUCKET)."
        ]
    credentials = section.get("credentials")
    if not isinstance(credentials, Mapping):
        return [
            f"startup_validation.object_store.credentials names {credentials!r}, "
            "which is not an entry of credentials.yml in this environment: "
            "add it (key, secret, endpoint_url)."
        ]
    endpoint = endpoint_of(credentials) or "(AWS default endpoint)"
    if not credentials.get("key") or not credentials.get("secret"):
        return [f"Object store {endpoint}: no access key configured: {_KEYS_HINT}."]
    client = make_client(credentials, float(section.get("timeout_s", DEFAULT_TIMEOUT_S)))
    problems: list[str] = []
    for bucket in buckets:
        problem, store_wide = _probe(client, bucket, endpoint)
        if problem:
            problems.append(problem)
        if store_wide:  # the same for every bucket: say it once
            break
    return problems
