"""Request parsing: raw request parts in, typed values or a ValidationError naming the field out."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from chalicelib.api.validation import (
    InitiateRequest,
    parse_idempotency_key,
    parse_include,
    parse_initiate,
    parse_job_id,
    parse_single_file,
)
from chalicelib.errors import PayloadTooLarge, ValidationError

MAX = 65536


def initiate(body, key=None, max_bytes=MAX) -> InitiateRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_initiate(raw, key, max_bytes)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "body: must be valid JSON"),
        (b"\xff\xfe", "body: must be valid JSON"),
        (b"", "body: must be a JSON object"),
        (None, "body: must be a JSON object"),
        (b"   \n", "body: must be a JSON object"),
        (b"[70000]", "body: must be a JSON object"),
        (b'"file_ids"', "body: must be a JSON object"),
        (b"null", "body: must be a JSON object"),
    ],
)
def test_body_that_is_not_a_json_object_is_rejected(raw, message):
    with pytest.raises(ValidationError) as error:
        parse_initiate(raw, None, MAX)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "file_ids: is required"),
        ({"fileIds": [70000]}, "fileIds: unknown field (allowed: file_ids, callbackUrl)"),
        ({"file_ids": 70000}, "file_ids: must be an array of integers"),
        ({"file_ids": "70000"}, "file_ids: must be an array of integers"),
        ({"file_ids": None}, "file_ids: must be an array of integers"),
        ({"file_ids": {"0": 70000}}, "file_ids: must be an array of integers"),
        ({"file_ids": []}, "file_ids: must contain at least 1 item"),
        ({"file_ids": list(range(10000, 11001))}, "file_ids: must contain at most 1000 items"),
        ({"file_ids": [70000, True]}, "file_ids[1]: must be an integer"),
        ({"file_ids": [False]}, "file_ids[0]: must be an integer"),
        ({"file_ids": [70000.5]}, "file_ids[0]: must be an integer"),
        ({"file_ids": [70000.0]}, "file_ids[0]: must be an integer"),
        ({"file_ids": ["70000"]}, "file_ids[0]: must be an integer"),
        ({"file_ids": [None]}, "file_ids[0]: must be an integer"),
        ({"file_ids": [[70000]]}, "file_ids[0]: must be an integer"),
        ({"file_ids": [70000, 70001, 9999]}, "file_ids[2]: must be >= 10000"),
        ({"file_ids": [-70000]}, "file_ids[0]: must be >= 10000"),
        ({"file_ids": [100000001]}, "file_ids[0]: must be <= 100000000"),
    ],
)
def test_invalid_file_ids_are_rejected_naming_the_offending_index(body, message):
    with pytest.raises(ValidationError) as error:
        initiate(body)
    assert str(error.value) == message
    assert error.value.STATUS_CODE == 400


def test_file_id_bounds_are_inclusive():
    request = initiate({"file_ids": [10000, 100000000]})

    assert request.file_ids == (10000, 100000000)


def test_one_thousand_file_ids_are_accepted():
    request = initiate({"file_ids": list(range(10000, 11000))})

    assert len(request.file_ids) == 1000


def test_duplicate_file_ids_collapse_keeping_first_seen_order():
    request = initiate({"file_ids": [70007, 70000, 70007, 70000, 70003]})

    assert request.file_ids == (70007, 70000, 70003)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"file_ids": [70000], "callback_url": "https://example.com/h"}, "callback_url"),
        ({"file_ids": [70000], "callbackUrl": None, "extra": True}, "extra"),
        ({"extra": True}, "extra"),  # named before the missing file_ids: the likelier mistake is a misspelling
        ({"file_ids": [70000], "x" * 100: 1}, "x" * 64 + "..."),
    ],
)
def test_an_unknown_body_field_is_refused_by_name_not_dropped(body, message):
    with pytest.raises(ValidationError) as error:
        initiate(body)
    assert str(error.value) == f"{message}: unknown field (allowed: file_ids, callbackUrl)"


def test_a_single_file_body_refuses_unknown_fields_too():
    with pytest.raises(ValidationError) as error:
        parse_single_file(json.dumps({"file_id": 70000, "fileId": 70000}).encode(), MAX)
    assert str(error.value) == "fileId: unknown field (allowed: file_id)"


def test_body_over_the_limit_is_too_large_before_it_is_parsed():
    raw = b"{" + b" " * 200 + b"}"

    with pytest.raises(PayloadTooLarge) as error:
        parse_initiate(raw, None, max_bytes=100)

    assert str(error.value) == "body: must be at most 100 bytes"
    assert error.value.STATUS_CODE == 413


def test_body_exactly_at_the_limit_is_accepted():
    raw = json.dumps({"file_ids": [70000]}).encode()

    assert parse_initiate(raw, None, max_bytes=len(raw)).file_ids == (70000,)


def test_fingerprint_is_the_same_for_bodies_that_collapse_to_the_same_ids():
    assert (
        initiate({"file_ids": [70000, 70000, 70001]}).fingerprint == initiate({"file_ids": [70000, 70001]}).fingerprint
    )


def test_fingerprint_differs_for_different_ids():
    assert initiate({"file_ids": [70000]}).fingerprint != initiate({"file_ids": [70001]}).fingerprint


def test_idempotency_key_is_trimmed_and_kept():
    assert initiate({"file_ids": [70000]}, key="  order-42 ").idempotency_key == "order-42"


def test_absent_idempotency_key_is_none():
    assert parse_idempotency_key(None) is None


@pytest.mark.parametrize("key", ["", "   ", "x" * 256, "tab\tinside", "line\nbreak"])
def test_unusable_idempotency_key_is_rejected(key):
    with pytest.raises(ValidationError) as error:
        parse_idempotency_key(key)
    assert str(error.value) == "Idempotency-Key: must be 1-255 printable characters"


def test_single_file_body_yields_the_file_id():
    assert parse_single_file(b'{"file_id": 70000}', MAX) == 70000


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{}", "file_id: is required"),
        (b'{"file_id": "70000"}', "file_id: must be an integer"),
        (b'{"file_id": true}', "file_id: must be an integer"),
        (b'{"file_id": 9999}', "file_id: must be >= 10000"),
        (b'{"file_id": 100000001}', "file_id: must be <= 100000000"),
        (b"[]", "body: must be a JSON object"),
    ],
)
def test_invalid_single_file_body_is_rejected(raw, message):
    with pytest.raises(ValidationError) as error:
        parse_single_file(raw, MAX)
    assert str(error.value) == message


def test_job_id_is_normalised_to_lowercase():
    job_id = str(uuid.uuid4())

    assert parse_job_id(job_id.upper()) == job_id


@pytest.mark.parametrize(
    "value",
    [
        "not-a-uuid",
        "1234",
        "",
        "3f0c2f7e11114111811111111111111",
        "3f0c2f7e111141118111111111111111",  # valid hex but not in the canonical form
        "{3f0c2f7e-1111-4111-8111-111111111111}",
        "urn:uuid:3f0c2f7e-1111-4111-8111-111111111111",
    ],
)
def test_malformed_job_id_is_rejected(value):
    with pytest.raises(ValidationError) as error:
        parse_job_id(value)
    assert str(error.value) == "jobId: must be a UUID"


@pytest.mark.parametrize(("value", "expected"), [(None, False), ("files", True), (" files , files", True), ("", False)])
def test_include_accepts_only_files(value, expected):
    assert parse_include(value) is expected


def test_include_names_the_unsupported_value():
    with pytest.raises(ValidationError) as error:
        parse_include("files,parts")
    assert str(error.value) == "include: unsupported value 'parts' (allowed: files)"


def test_callback_url_is_optional_and_passed_on_as_given():
    assert initiate({"file_ids": [70000]}).callback_url is None
    assert initiate({"file_ids": [70000], "callbackUrl": None}).callback_url is None  # null, as the document allows
    assert (
        initiate({"file_ids": [70000], "callbackUrl": "https://example.com/h"}).callback_url == "https://example.com/h"
    )


@pytest.mark.parametrize("value", ["", 42, ["https://example.com/h"], "https://example.com/" + "a" * 2048])
def test_callback_url_must_be_a_string_of_at_most_2048_characters(value):
    with pytest.raises(ValidationError, match="callbackUrl"):
        initiate({"file_ids": [70000], "callbackUrl": value})


def test_fingerprint_includes_the_callback_url_and_is_unchanged_without_one():
    plain = initiate({"file_ids": [70000]})
    hooked = initiate({"file_ids": [70000], "callbackUrl": "https://example.com/h"})
    other = initiate({"file_ids": [70000], "callbackUrl": "https://example.com/other"})

    assert len({plain.fingerprint, hooked.fingerprint, other.fingerprint}) == 3
    assert plain.fingerprint == hashlib.sha256(b'{"file_ids":[70000]}').hexdigest()
