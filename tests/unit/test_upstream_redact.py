"""What an upstream's error message keeps once llmroute strips it of credentials (pure: no HTTP)."""

from __future__ import annotations

import pytest

from llmroute.proxy.upstreamerror import REDACTED, redact, scrub_error_events

KEY = "gw-0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("Incorrect API key provided: sk-proj-****cdef.", "sk-proj-****cdef"),
        ("Invalid key sk-ant-api03-AbCdEfGh1234.", "sk-ant-api03-AbCdEfGh1234"),
        ("Invalid API Key gsk_AbCdEf0123456789", "gsk_AbCdEf0123456789"),
        ("Incorrect API key provided: xai-AbCdEf0123456789", "xai-AbCdEf0123456789"),
        ("API key not valid: AIzaSyA-0123456789abcdefghijklmnopqrs", "AIzaSyA-0123456789abcdefghijklmnopqrs"),
        ("Rejected Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi.payload.sig"),
        ("Access denied for key a1b2********f9e0 (Azure).", "a1b2********f9e0"),
        ("Rate limit reached for organization org-AbCd1234 on tokens.", "org-AbCd1234"),
        ("Project proj_AbCd1234 is over its quota.", "proj_AbCd1234"),
        ("Organization org_AbCd1234 has no access.", "org_AbCd1234"),
    ],
)
def test_a_credential_or_account_id_in_an_upstream_message_is_redacted(message: str, secret: str) -> None:
    out = redact(message, KEY)
    assert secret not in out
    assert REDACTED in out


def test_the_gateways_own_key_is_redacted_whatever_its_shape() -> None:
    assert redact(f"key {KEY} refused", KEY) == f"key {REDACTED} refused"


@pytest.mark.parametrize(
    "message",
    [
        "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.",
        "Invalid value for 'temperature': must be between 0 and 2.",
        "The server had an error while processing your request. Sorry about that!",
        "Rate limit reached for gpt-4o in requests per min (RPM): Limit 500, Used 500.",
    ],
)
def test_an_ordinary_message_is_left_whole(message: str) -> None:
    assert redact(message, KEY) == message


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_an_error_event_is_stripped_whatever_its_lines_end_in(end: bytes) -> None:
    chunk = b'data: {"choices": []}' + end + end
    error = b'data: {"error": {"message": "key ' + KEY.encode() + b' over quota", "type": "x"}}'
    out = scrub_error_events(chunk + error + end + end, KEY)
    assert KEY.encode() not in out and REDACTED.encode() in out
    assert out.startswith(chunk) and out.endswith(end + end)  # the other lines and every line end kept
