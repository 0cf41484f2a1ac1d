"""The object-store start-up check: each S3 answer becomes one sentence naming the fix.

S3 answers come from botocore's in-process Stubber; the real server is exercised in
tests/integration/object_store."""

from __future__ import annotations

import socket
import time

import pytest
from botocore.stub import Stubber

from fraud_detection.object_store import (
    ObjectStoreSettingsError,
    check_object_store,
    make_client,
    probe_bucket,
)

ENDPOINT = "http://127.0.0.1:9"
CREDENTIALS = {"key": "k", "secret": "s", "endpoint_url": ENDPOINT}


@pytest.fixture
def stubbed():
    client = make_client(CREDENTIALS)
    with Stubber(client) as stubber:
        yield client, stubber


def test_bucket_that_lists_and_takes_a_write_passes(stubbed):
    client, stubber = stubbed
    stubber.add_response("list_objects_v2", {"KeyCount": 0})
    stubber.add_response("put_object", {})
    stubber.add_response("delete_object", {})
    assert probe_bucket(client, "data", ENDPOINT) == []
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        (
            "InvalidAccessKeyId",
            403,
            (
                "does not know the access key in AWS_ACCESS_KEY_ID (InvalidAccessKeyId): "
                "set AWS_ACCESS_KEY_ID"
            ),
        ),
        (
            "SignatureDoesNotMatch",
            403,
            "rejects the secret in AWS_SECRET_ACCESS_KEY (SignatureDoesNotMatch)",
        ),
        (
            "NoSuchBucket",
            404,
            "Bucket 'data' does not exist at http://127.0.0.1:9 (NoSuchBucket): create it",
        ),
        (
            "AccessDenied",
            403,
            "denies the configured keys permission to list bucket 'data' (AccessDenied)",
        ),
        ("SlowDown", 503, "refused to list bucket 'data': SlowDown"),
    ],
)
def test_each_error_code_names_what_to_fix(stubbed, code, status, expected):
    client, stubber = stubbed
    stubber.add_client_error("list_objects_v2", service_error_code=code, http_status_code=status)
    problems = probe_bucket(client, "data", ENDPOINT)
    assert len(problems) == 1
    assert expected in problems[0]


def test_read_only_keys_are_reported_at_the_write(stubbed):
    client, stubber = stubbed
    stubber.add_response("list_objects_v2", {"KeyCount": 0})
    stubber.add_client_error("put_object", service_error_code="AccessDenied", http_status_code=403)
    assert probe_bucket(client, "data", ENDPOINT) == [
        "Object store http://127.0.0.1:9 denies the configured keys permission "
        "to write to bucket 'data' (AccessDenied): "
        "grant them read and write access to the bucket, or use keys that have it."
    ]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_endpoint_is_reported_once_and_fast():
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    problems = check_object_store(
        {
            "buckets": ["a", "b"],
            "credentials": {**CREDENTIALS, "endpoint_url": endpoint},
            "timeout_s": 2,
        }
    )
    assert time.monotonic() - started < 5
    assert problems == [
        f"Object store {endpoint} is not reachable (EndpointConnectionError): "
        "start it (`scripts/s3.sh start` locally) "
        "or set AWS_ENDPOINT_URL_S3 to the address of the store."
    ]


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            {"buckets": ["a"], "credentials": "s3"},
            "credentials names 's3', which is not an entry of credentials.yml",
        ),
        ({"buckets": [], "credentials": CREDENTIALS}, "buckets is empty"),
        (
            {"buckets": ["a"], "credentials": {**CREDENTIALS, "key": None}},
            "no access key configured",
        ),
        (
            {"buckets": ["a"], "credentials": CREDENTIALS, "bucket": "typo"},
            "Unknown key(s) ['bucket']",
        ),
    ],
)
def test_incomplete_settings_are_reported_without_a_request(section, expected):
    problems = check_object_store(section)
    assert len(problems) == 1 and expected in problems[0]


def test_client_refuses_credentials_that_are_not_a_mapping():
    with pytest.raises(ObjectStoreSettingsError, match="must be an entry of credentials.yml"):
        make_client("s3")  # type: ignore[arg-type]
