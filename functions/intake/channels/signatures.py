"""Signature checks shared by the channel adapters. Every comparison is constant-time."""

from __future__ import annotations

import base64
import hashlib
import hmac

from intake.errors import SignatureInvalidError


def _hmac_sha256(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), payload, hashlib.sha256).digest()


def form_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`, what a signed form sends."""
    return "sha256=" + _hmac_sha256(secret, timestamp.encode() + b"." + body).hex()


def verify_form(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float, tolerance_s: int
) -> None:
    timestamp = (timestamp or "").strip()
    if not timestamp or not signature:
        raise SignatureInvalidError("X-Intake-Timestamp and X-Intake-Signature are required")
    try:
        sent = int(timestamp)
    except ValueError:
        raise SignatureInvalidError("X-Intake-Timestamp is not a unix time in seconds") from None
    if abs(now - sent) > tolerance_s:
        raise SignatureInvalidError(f"X-Intake-Timestamp is more than {tolerance_s} s away from now")
    if not hmac.compare_digest(form_signature(secret, timestamp, body).encode(), signature.strip().encode()):
        raise SignatureInvalidError("X-Intake-Signature does not match the body")


def typeform_signature(secret: str, body: bytes) -> str:
    """`sha256=<base64 HMAC-SHA256(secret, body)>`, as Typeform signs its webhooks."""
    return "sha256=" + base64.b64encode(_hmac_sha256(secret, body)).decode()


def verify_typeform(secret: str, signature: str | None, body: bytes) -> None:
    if not signature:
        raise SignatureInvalidError("Typeform-Signature is required")
    if not hmac.compare_digest(typeform_signature(secret, body).encode(), signature.strip().encode()):
        raise SignatureInvalidError("Typeform-Signature does not match the body")
