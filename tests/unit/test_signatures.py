"""Form HMAC and Typeform signatures, checked against values computed independently with openssl."""

from __future__ import annotations

import json

import pytest

from intake.channels import forms, signatures
from intake.channels.forms import Form
from intake.errors import OriginForbiddenError, SignatureInvalidError

from .builders import request

FORM_SECRET = "whsec-contact-test"
TIMESTAMP = "1700000000"
SENT_AT = 1_700_000_000
FORM_BODY = b'{"email":"camille@example.org","message":"Bonjour"}'
# printf '%s' '1700000000.{"email":"camille@example.org","message":"Bonjour"}' \
#   | openssl dgst -sha256 -hmac 'whsec-contact-test'
FORM_SIGNATURE = "sha256=dc58d472e01a765bcf3973a079909dd8661047380a52319b089a2443c475bde4"

UTF8_BODY = '{"message":"Café ☕"}'.encode()
# printf '%s' '1700000000.{"message":"Café ☕"}' | openssl dgst -sha256 -hmac 'whsec-contact-test'
# (LC_CTYPE=C.UTF-8, so the body is hashed as its UTF-8 bytes)
UTF8_SIGNATURE = "sha256=a834879e274b6900568e02c02d4b8ce433f3331dac6bb34402b437b56e335004"

TYPEFORM_SECRET = "typeform-test-secret"
TYPEFORM_BODY = b'{"event_id":"01JDTEST","form_response":{"token":"tok-1","answers":[]}}'
# printf '%s' '{"event_id":"01JDTEST","form_response":{"token":"tok-1","answers":[]}}' \
#   | openssl dgst -sha256 -hmac 'typeform-test-secret' -binary | openssl base64 -A
TYPEFORM_SIGNATURE = "sha256=ewkXPOjXl15QNdgjQIIc45oYsQmc497DT6C7AFdGAHs="

TOLERANCE_S = 300


def form_accepts(
    timestamp: str | None,
    signature: str | None,
    *,
    body: bytes = FORM_BODY,
    now: float = SENT_AT,
    secret: str = FORM_SECRET,
) -> bool:
    try:
        signatures.verify_form(secret, timestamp, signature, body, now, TOLERANCE_S)
    except SignatureInvalidError:
        return False
    return True


def typeform_accepts(signature: str | None, *, body: bytes = TYPEFORM_BODY, secret: str = TYPEFORM_SECRET) -> bool:
    try:
        signatures.verify_typeform(secret, signature, body)
    except SignatureInvalidError:
        return False
    return True


# ------------------------------------------------------------------------------------ form HMAC


def test_form_signature_matches_openssl_hmac_of_timestamp_dot_body() -> None:
    # Given a secret, a timestamp and a body whose HMAC openssl computed
    # When the form signature is computed
    # Then it is `sha256=` and the same hex digest
    assert signatures.form_signature(FORM_SECRET, TIMESTAMP, FORM_BODY) == FORM_SIGNATURE


def test_form_signature_hashes_the_utf8_bytes_of_the_body() -> None:
    assert signatures.form_signature(FORM_SECRET, TIMESTAMP, UTF8_BODY) == UTF8_SIGNATURE


def test_signed_form_with_matching_signature_is_accepted() -> None:
    assert form_accepts(TIMESTAMP, FORM_SIGNATURE)
    assert form_accepts(TIMESTAMP, UTF8_SIGNATURE, body=UTF8_BODY)


@pytest.mark.parametrize("offset", [-TOLERANCE_S, -1, 0, 1, TOLERANCE_S], ids=lambda s: f"now{s:+d}s")
def test_signed_form_within_the_tolerance_is_accepted(offset: int) -> None:
    # Given a correctly signed request, When it is checked `offset` seconds after it was signed
    # Then it is accepted while the clocks are at most the tolerance apart, in either direction
    assert form_accepts(TIMESTAMP, FORM_SIGNATURE, now=SENT_AT + offset)


@pytest.mark.parametrize(
    "offset",
    [TOLERANCE_S + 1, TOLERANCE_S + 0.5, 86_400, -(TOLERANCE_S + 1), -(TOLERANCE_S + 0.5), -86_400],
    ids=lambda s: f"now{s:+}s",
)
def test_signed_form_with_stale_timestamp_is_rejected(offset: float) -> None:
    # Given a correctly signed request replayed late, or stamped in the future
    # When it is checked outside the tolerance
    # Then it is rejected, and the reason names the timestamp
    with pytest.raises(SignatureInvalidError, match="X-Intake-Timestamp"):
        signatures.verify_form(FORM_SECRET, TIMESTAMP, FORM_SIGNATURE, FORM_BODY, SENT_AT + offset, TOLERANCE_S)


def _flip_last(signature: str) -> str:
    return signature[:-1] + ("0" if signature[-1] != "0" else "1")


@pytest.mark.parametrize(
    ("timestamp", "signature", "body", "secret"),
    [
        pytest.param(TIMESTAMP, _flip_last(FORM_SIGNATURE), FORM_BODY, FORM_SECRET, id="one-digit-changed"),
        pytest.param(TIMESTAMP, FORM_SIGNATURE, FORM_BODY + b" ", FORM_SECRET, id="body-changed"),
        pytest.param(
            TIMESTAMP,
            FORM_SIGNATURE,
            FORM_BODY.replace(b"Bonjour", b"Bonsoir"),
            FORM_SECRET,
            id="body-edited",
        ),
        pytest.param("1700000001", FORM_SIGNATURE, FORM_BODY, FORM_SECRET, id="timestamp-changed"),
        pytest.param(TIMESTAMP, FORM_SIGNATURE, FORM_BODY, "another-secret", id="other-secret"),
        pytest.param(TIMESTAMP, UTF8_SIGNATURE, FORM_BODY, FORM_SECRET, id="another-body's-signature"),
    ],
)
def test_forged_form_signature_is_rejected(timestamp: str, signature: str, body: bytes, secret: str) -> None:
    # Given a signature that does not belong to this timestamp, body and secret
    # When it is checked, Then it is rejected
    with pytest.raises(SignatureInvalidError, match="does not match"):
        signatures.verify_form(secret, timestamp, signature, body, SENT_AT, TOLERANCE_S)


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [(None, FORM_SIGNATURE), (TIMESTAMP, None), (None, None), ("", FORM_SIGNATURE), (TIMESTAMP, "")],
    ids=["no-timestamp", "no-signature", "neither", "empty-timestamp", "empty-signature"],
)
def test_signed_form_without_its_headers_is_rejected(timestamp: str | None, signature: str | None) -> None:
    with pytest.raises(SignatureInvalidError, match="X-Intake-Timestamp and X-Intake-Signature are required"):
        signatures.verify_form(FORM_SECRET, timestamp, signature, FORM_BODY, SENT_AT, TOLERANCE_S)


@pytest.mark.parametrize("timestamp", ["yesterday", "1700000000.0", "1.7e9", "0x6553f100"])
def test_signed_form_with_malformed_timestamp_is_rejected(timestamp: str) -> None:
    with pytest.raises(SignatureInvalidError, match="not a unix time"):
        signatures.verify_form(FORM_SECRET, timestamp, FORM_SIGNATURE, FORM_BODY, SENT_AT, TOLERANCE_S)


@pytest.mark.parametrize(
    "signature",
    [
        FORM_SIGNATURE.removeprefix("sha256="),  # the bare digest
        "sha1=" + FORM_SIGNATURE.removeprefix("sha256="),
        "SHA256=" + FORM_SIGNATURE.removeprefix("sha256="),
        FORM_SIGNATURE[:-2],  # truncated
        FORM_SIGNATURE + "00",  # too long
        "sha256=" + "0" * 64,
        "sha256=ZGM1OGQ0NzJlMDFhNzY1YmNmMzk3M2EwNzk5MDlkZDg=",  # base64, not hex
        "sha256=dc58 d472e01a765bcf3973a079909dd8661047380a52319b089a2443c475bde4",  # a space inside
    ],
)
def test_signed_form_with_malformed_signature_is_rejected(signature: str) -> None:
    assert not form_accepts(TIMESTAMP, signature)


@pytest.mark.parametrize(
    "padded", [f" {FORM_SIGNATURE}", f"{FORM_SIGNATURE} ", f"{FORM_SIGNATURE}\n", f"\t{FORM_SIGNATURE}"]
)
def test_signed_form_signature_with_surrounding_whitespace_is_accepted(padded: str) -> None:
    # Given the right signature with whitespace around it (a shell's newline, a proxy's padding)
    # Then it is read as the signature it is
    assert form_accepts(TIMESTAMP, padded)


@pytest.mark.parametrize("padded", [f" {TIMESTAMP}", f"{TIMESTAMP} ", f"{TIMESTAMP}\n"])
def test_signed_form_timestamp_with_surrounding_whitespace_is_read_as_its_digits(padded: str) -> None:
    # Given the right timestamp and signature, with whitespace around the timestamp header's value
    # When it is checked
    # Then it is accepted, as whitespace around the signature is: the sender signed the digits.
    # (HTTP field values exclude surrounding whitespace, RFC 9110 section 5.5.)
    assert form_accepts(padded, FORM_SIGNATURE)


# ------------------------------------------------------------------------------------- Typeform


def test_typeform_signature_matches_openssl_base64_hmac_of_body() -> None:
    assert signatures.typeform_signature(TYPEFORM_SECRET, TYPEFORM_BODY) == TYPEFORM_SIGNATURE


def test_typeform_request_with_matching_signature_is_accepted() -> None:
    assert typeform_accepts(TYPEFORM_SIGNATURE)


@pytest.mark.parametrize(
    ("signature", "body", "secret"),
    [
        pytest.param(TYPEFORM_SIGNATURE, TYPEFORM_BODY, "another-secret", id="other-secret"),
        pytest.param(TYPEFORM_SIGNATURE, TYPEFORM_BODY.replace(b"tok-1", b"tok-2"), TYPEFORM_SECRET, id="edited"),
        pytest.param(
            TYPEFORM_SIGNATURE,
            json.dumps(json.loads(TYPEFORM_BODY)).encode(),  # same JSON, re-serialized with spaces
            TYPEFORM_SECRET,
            id="reserialized",
        ),
        pytest.param(
            TYPEFORM_SIGNATURE.replace("ewkX", "ewkY"),
            TYPEFORM_BODY,
            TYPEFORM_SECRET,
            id="one-character-changed",
        ),
    ],
)
def test_forged_typeform_signature_is_rejected(signature: str, body: bytes, secret: str) -> None:
    with pytest.raises(SignatureInvalidError, match="does not match"):
        signatures.verify_typeform(secret, signature, body)


@pytest.mark.parametrize("signature", [None, ""], ids=["absent", "empty"])
def test_typeform_request_without_signature_is_rejected(signature: str | None) -> None:
    with pytest.raises(SignatureInvalidError, match="Typeform-Signature is required"):
        signatures.verify_typeform(TYPEFORM_SECRET, signature, TYPEFORM_BODY)


@pytest.mark.parametrize(
    "signature",
    [
        TYPEFORM_SIGNATURE.removeprefix("sha256="),  # bare base64
        # The hex form of the same HMAC, as a signed form would send it:
        # printf '%s' '<TYPEFORM_BODY>' | openssl dgst -sha256 -hmac 'typeform-test-secret'
        "sha256=7b09173ce8d7975e5035d82340821ce39a18b1099ce3dec34fa0bb005746007b",
        TYPEFORM_SIGNATURE.rstrip("="),  # padding dropped
    ],
    ids=["no-prefix", "hex", "unpadded"],
)
def test_typeform_signature_in_another_encoding_is_rejected(signature: str) -> None:
    assert not typeform_accepts(signature)


@pytest.mark.parametrize("padded", [f" {TYPEFORM_SIGNATURE}", f"{TYPEFORM_SIGNATURE}\r\n"])
def test_typeform_signature_with_surrounding_whitespace_is_accepted(padded: str) -> None:
    assert typeform_accepts(padded)


# ------------------------------------------------------------- a form's own authentication


def test_signed_form_request_is_verified_with_its_headers(contact_form: Form) -> None:
    # Given the signed `contact` form and a request carrying the openssl-computed signature
    signed = request(FORM_BODY, "application/json", x_intake_timestamp=TIMESTAMP, x_intake_signature=FORM_SIGNATURE)
    # When it is verified at the time it was signed, Then it passes; a minute after the window, it does not
    assert forms.verify(contact_form, signed, FORM_SECRET, now=SENT_AT) is None
    with pytest.raises(SignatureInvalidError):
        forms.verify(contact_form, signed, FORM_SECRET, now=SENT_AT + TOLERANCE_S + 60)


def test_signed_form_without_a_configured_secret_is_rejected(contact_form: Form) -> None:
    # Given a signed form whose secret is missing from the environment or Secrets Manager
    signed = request(FORM_BODY, "application/json", x_intake_timestamp=TIMESTAMP, x_intake_signature=FORM_SIGNATURE)
    # Then no request can pass, whatever it carries
    with pytest.raises(SignatureInvalidError, match="no secret"):
        forms.verify(contact_form, signed, None, now=SENT_AT)


def test_typeform_form_checks_the_typeform_signature_only(feedback_form: Form) -> None:
    good = request(TYPEFORM_BODY, "application/json", typeform_signature=TYPEFORM_SIGNATURE)
    form_signed = request(TYPEFORM_BODY, "application/json", x_intake_timestamp=TIMESTAMP, x_intake_signature="x")
    assert forms.verify(feedback_form, good, TYPEFORM_SECRET, now=SENT_AT) is None
    with pytest.raises(SignatureInvalidError, match="Typeform-Signature is required"):
        forms.verify(feedback_form, form_signed, TYPEFORM_SECRET, now=SENT_AT)


@pytest.mark.parametrize("origin", ["https://www.example.com", "https://example.com"])
def test_public_form_from_an_allowed_origin_is_accepted(website_form: Form, origin: str) -> None:
    assert forms.verify(website_form, request(b"", origin=origin), None, now=SENT_AT) is None


@pytest.mark.parametrize(
    "origin",
    [
        None,
        "",
        "https://evil.example",
        "http://www.example.com",
        "https://www.example.com/",
        "https://example.com.evil.io",
    ],
    ids=["absent", "empty", "other-site", "http", "trailing-slash", "suffix-domain"],
)
def test_public_form_from_another_origin_is_forbidden(website_form: Form, origin: str | None) -> None:
    headers = {} if origin is None else {"origin": origin}
    with pytest.raises(OriginForbiddenError) as raised:
        forms.verify(website_form, request(b"", **headers), None, now=SENT_AT)
    assert raised.value.origin == origin
