"""`X-Hub-Signature-256`: Meta's published vector, vectors computed with openssl, and the exact-bytes rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake.channels import signatures, whatsapp
from intake.config import Policy
from intake.errors import SignatureInvalidError
from intake.local import samples
from intake.model import WebhookRequest
from intake.secrets import Secrets

# Meta's published example
PUBLISHED_SECRET = "TEST_APP_SECRET"
PUBLISHED_BODY = b"test"
PUBLISHED_SIGNATURE = "sha256=0c61947b610d4f45e65f3d680e26027121ec2413e77598bcb6cfc6e0d9888221"

APP_SECRET = "whatsapp-app-secret"
# The same JSON twice: escaped as Meta sends it, and as UTF-8
ESCAPED_BODY = rb'{"text":{"body":"Caf\u00e9 \ud83d\ude15"}}'
UTF8_BODY = '{"text":{"body":"Café 😕"}}'.encode()
# printf '%s' '<body>' | openssl dgst -sha256 -hmac 'whatsapp-app-secret'
ESCAPED_SIGNATURE = "sha256=4a01ae028e2afb438e7251a69e8b72d2a1953f04e448668959f02b912f231c02"
UTF8_SIGNATURE = "sha256=1b6aa11867f1510a0e7ce380c2f189fcf63488542f8da29aa8e361d9649970d7"

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "whatsapp"


def accepts(header: str | None, body: bytes = PUBLISHED_BODY, secret: str = PUBLISHED_SECRET) -> bool:
    try:
        signatures.verify_meta(secret, header, body)
    except SignatureInvalidError:
        return False
    return True


def post(body: bytes, **headers: str) -> WebhookRequest:
    return WebhookRequest(method="POST", path=whatsapp.PATH, query="", headers=headers, body=body)


def test_published_vector_signs_and_verifies() -> None:
    # Given Meta's published example
    # When it is signed, Then the signature is the published one, and it verifies
    assert signatures.meta_signature(PUBLISHED_SECRET, PUBLISHED_BODY) == PUBLISHED_SIGNATURE
    assert accepts(PUBLISHED_SIGNATURE)


def test_signatures_match_openssl_over_escaped_and_utf8_bytes() -> None:
    assert signatures.meta_signature(APP_SECRET, ESCAPED_BODY) == ESCAPED_SIGNATURE
    assert signatures.meta_signature(APP_SECRET, UTF8_BODY) == UTF8_SIGNATURE


def test_escaped_body_re_serialized_as_utf8_no_longer_verifies() -> None:
    # Given a body Meta signed with \uXXXX escapes, and the same JSON re-serialized by a receiver
    reserialized = json.dumps(json.loads(ESCAPED_BODY), ensure_ascii=False, separators=(",", ":")).encode()
    assert json.loads(reserialized) == json.loads(ESCAPED_BODY)
    # Then only the bytes as received carry the signature
    assert accepts(ESCAPED_SIGNATURE, ESCAPED_BODY, APP_SECRET)
    assert not accepts(ESCAPED_SIGNATURE, reserialized, APP_SECRET)


def test_body_with_other_whitespace_no_longer_verifies() -> None:
    pretty = json.dumps(json.loads(UTF8_BODY), ensure_ascii=False, indent=1).encode()
    assert not accepts(UTF8_SIGNATURE, pretty, APP_SECRET)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        PUBLISHED_SIGNATURE.removeprefix("sha256="),  # no algorithm
        "sha1=" + PUBLISHED_SIGNATURE.removeprefix("sha256="),
        PUBLISHED_SIGNATURE[:-1],  # 63 hex digits
        PUBLISHED_SIGNATURE + "0",
        PUBLISHED_SIGNATURE[:-1] + "g",
        "sha256=" + "0" * 64,
        signatures.meta_signature("another secret", PUBLISHED_BODY),
        f"{PUBLISHED_SIGNATURE},{PUBLISHED_SIGNATURE}",
    ],
    ids=[
        "none",
        "empty",
        "blank",
        "no-prefix",
        "sha1",
        "short",
        "long",
        "not-hex",
        "zeros",
        "other-secret",
        "twice",
    ],
)
def test_missing_malformed_or_forged_signature_is_refused(header: str | None) -> None:
    assert not accepts(header)


def test_signature_with_upper_case_hex_or_surrounding_spaces_is_accepted() -> None:
    digest = PUBLISHED_SIGNATURE.removeprefix("sha256=")
    assert accepts(f"  sha256={digest.upper()} ")
    assert accepts(f"SHA256={digest}")


@given(secret=st.text(min_size=1, max_size=40), body=st.binary(max_size=300), flip=st.integers(min_value=0))
def test_a_signature_verifies_its_body_and_no_other(secret: str, body: bytes, flip: int) -> None:
    # Given any secret and body, signed
    header = signatures.meta_signature(secret, body)
    # Then it verifies that body
    assert accepts(header, body, secret)
    # And not the body with one bit changed, nor with a byte more
    if body:
        position = flip % len(body)
        changed = body[:position] + bytes([body[position] ^ 0x01]) + body[position + 1 :]
        assert not accepts(header, changed, secret)
    assert not accepts(header, body + b" ", secret)


def test_request_is_verified_by_its_x_hub_signature_256_header() -> None:
    request = post(ESCAPED_BODY, **{"x-hub-signature-256": ESCAPED_SIGNATURE})
    whatsapp.verify(request, APP_SECRET)


def test_request_without_an_app_secret_configured_is_refused() -> None:
    request = post(ESCAPED_BODY, **{"x-hub-signature-256": ESCAPED_SIGNATURE})
    for secret in (None, ""):
        with pytest.raises(SignatureInvalidError):
            whatsapp.verify(request, secret)


def test_request_without_the_header_or_with_another_secret_is_refused() -> None:
    with pytest.raises(SignatureInvalidError):
        whatsapp.verify(post(ESCAPED_BODY), APP_SECRET)
    with pytest.raises(SignatureInvalidError):
        whatsapp.verify(post(ESCAPED_BODY, **{"x-hub-signature-256": ESCAPED_SIGNATURE}), "another secret")


# ---------------------------------------------------------------------------------------- samples


def test_whatsapp_samples_are_signed_over_the_bytes_they_send(policy: Policy) -> None:
    # Given every WhatsApp sample, prepared with an app secret
    secrets = Secrets(environ={"INTAKE_WHATSAPP_APP_SECRET": APP_SECRET})
    for path in sorted(SAMPLES.glob("*.json")):
        prepared = samples.prepare(samples.load(path), policy, secrets)
        # Then its signature verifies the body it sends, as the receiver checks it
        request = post(prepared.body, **prepared.headers)
        whatsapp.verify(request, APP_SECRET)
        assert prepared.headers["content-type"] == "application/json"


def test_json_ascii_sample_is_sent_with_escapes_as_meta_sends_it(policy: Policy) -> None:
    secrets = Secrets(environ={"INTAKE_WHATSAPP_APP_SECRET": APP_SECRET})
    sample = samples.load(SAMPLES / "20-non-ascii.json")
    assert sample["json_ascii"] is True
    prepared = samples.prepare(sample, policy, secrets)
    # Then the body is pure ASCII, emoji as surrogate pairs, and means the same JSON
    assert prepared.body.isascii()
    assert b"\\ud83d\\ude15" in prepared.body
    assert json.loads(prepared.body) == sample["json"]
    # And without the flag the same JSON goes as UTF-8, with another signature
    utf8 = samples.prepare({**sample, "json_ascii": False}, policy, secrets)
    assert not utf8.body.isascii()
    assert utf8.headers["x-hub-signature-256"] != prepared.headers["x-hub-signature-256"]


def test_signing_a_whatsapp_sample_without_the_app_secret_names_the_variable(policy: Policy) -> None:
    sample = samples.load(SAMPLES / "01-text.json")
    with pytest.raises(LookupError, match="INTAKE_WHATSAPP_APP_SECRET"):
        samples.prepare(sample, policy, Secrets(environ={}))


def test_other_samples_get_no_meta_signature(policy: Policy) -> None:
    sample = {"path": "/webhooks/forms/website", "json": {"message": "Bonjour"}}
    prepared = samples.prepare(sample, policy, Secrets(environ={}))
    assert "x-hub-signature-256" not in prepared.headers
    assert prepared.body == b'{"message": "Bonjour"}'
