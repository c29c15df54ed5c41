"""Signature checks shared by the channel adapters. Every comparison is constant-time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from urllib.parse import parse_qs, urlsplit

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


_META_SIGNATURE = re.compile(r"sha256=([0-9a-f]{64})", re.IGNORECASE)


def meta_signature(secret: str, body: bytes) -> str:
    """`X-Hub-Signature-256`: `sha256=<hex HMAC-SHA256(app secret, raw body)>`, as Meta signs its webhooks."""
    return "sha256=" + _hmac_sha256(secret, body).hex()


def verify_meta(secret: str, header: str | None, body: bytes) -> None:
    """Accept only the signature of these exact bytes (Meta escapes non-ASCII as `\\uXXXX`: never re-serialize)."""
    if not header or not header.strip():
        raise SignatureInvalidError("X-Hub-Signature-256 is required")
    sent = _META_SIGNATURE.fullmatch(header.strip())
    if sent is None:
        raise SignatureInvalidError("X-Hub-Signature-256 is not sha256=<64 hex digits>")
    expected = _hmac_sha256(secret, body).hex()
    if not hmac.compare_digest(expected.encode(), sent.group(1).lower().encode()):
        raise SignatureInvalidError("X-Hub-Signature-256 does not match the body")


def twilio_signature(token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """`X-Twilio-Signature`: base64 HMAC-SHA1(auth token, URL + each POST param as name + value).

    Names are sorted, and a repeated name's values are sorted, by code point. Like Twilio's own
    helper libraries (twilio-python `RequestValidator`, twilio-node `getExpectedTwilioSignature`),
    a value repeated under the same name counts once.
    """
    grouped: dict[str, set[str]] = {}
    for name, value in params:
        grouped.setdefault(name, set()).add(value)
    payload = url + "".join(name + value for name in sorted(grouped) for value in sorted(grouped[name]))
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_twilio(token: str, urls: Sequence[str], params: Iterable[tuple[str, str]], signature: str | None) -> None:
    """Accept when the signature matches any candidate URL (see `twilio_url_variants`) with these params."""
    if not signature or not signature.strip():
        raise SignatureInvalidError("X-Twilio-Signature is required")
    if not urls:
        raise SignatureInvalidError("no URL to check X-Twilio-Signature against")
    pairs = list(params)
    sent = signature.strip().encode()
    # Every candidate is compared, and each comparison is constant-time
    matches = [hmac.compare_digest(twilio_signature(token, url, pairs).encode(), sent) for url in urls]
    if not any(matches):
        raise SignatureInvalidError("X-Twilio-Signature does not match the URL and parameters")


def twilio_body_hash(body: bytes) -> str:
    """The hex SHA-256 of a JSON body, as Twilio puts it in the `bodySHA256` query parameter."""
    return hashlib.sha256(body).hexdigest()


def verify_twilio_body(token: str, urls: Sequence[str], body: bytes, signature: str | None) -> None:
    """The JSON-body variant: the signature covers the URL alone (its query carries `bodySHA256`),
    and the body's hex SHA-256 must equal `bodySHA256`."""
    verify_twilio(token, urls, (), signature)
    sent = parse_qs(urlsplit(urls[0]).query).get("bodySHA256", [""])[0].strip().lower()
    if not sent:
        raise SignatureInvalidError("the URL carries no bodySHA256 for the JSON body")
    if not hmac.compare_digest(twilio_body_hash(body).encode(), sent.encode()):
        raise SignatureInvalidError("bodySHA256 does not match the body")


_DEFAULT_PORTS = {"https": "443", "http": "80"}


def twilio_url_variants(url: str) -> list[str]:
    """The URL as given, then the same URL with the scheme's default port added (when it has no port)
    or removed (when it has the default port): Twilio may sign either form. Any other port is kept,
    and the URL is otherwise untouched (no re-encoding, no lower-casing: Twilio signs the exact text)."""
    scheme, sep, rest = url.partition("://")
    default = _DEFAULT_PORTS.get(scheme.lower())
    if not sep or default is None:
        return [url]
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, hostport = authority.rpartition("@")
    colon = hostport.find(":", hostport.rfind("]") + 1)  # a colon inside an IPv6 literal is not a port
    host, port = (hostport, "") if colon < 0 else (hostport[:colon], hostport[colon + 1 :])
    prefix = f"{scheme}://{userinfo}{at}{host}"
    if port == "":
        return [url, f"{prefix}:{default}{tail}"]
    if port == default:
        return [url, f"{prefix}{tail}"]
    return [url]


def mailgun_signature(key: str, timestamp: str, token: str) -> str:
    """Mailgun's `signature`: hex HMAC-SHA256(webhook signing key, timestamp + token), no separator."""
    return _hmac_sha256(key, (timestamp + token).encode()).hex()


_MAILGUN_SIGNATURE = re.compile(r"[0-9a-f]{64}", re.IGNORECASE)


def verify_mailgun(
    key: str, timestamp: str | None, token: str | None, signature: str | None, now: float, tolerance_s: int
) -> None:
    """Accept a Mailgun signature made with this key over these values, sent within `tolerance_s` of now
    (either way: a clock ahead of ours is as suspect as a stale request)."""
    timestamp, token, signature = (timestamp or "").strip(), (token or "").strip(), (signature or "").strip()
    if not timestamp or not token or not signature:
        raise SignatureInvalidError("timestamp, token and signature are required")
    try:
        sent = int(timestamp)
    except ValueError:
        raise SignatureInvalidError("timestamp is not a unix time in seconds") from None
    if _MAILGUN_SIGNATURE.fullmatch(signature) is None:
        raise SignatureInvalidError("signature is not 64 hex digits")
    expected = mailgun_signature(key, timestamp, token)
    if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
        raise SignatureInvalidError("signature does not match the timestamp and token")
    if abs(now - sent) > tolerance_s:
        raise SignatureInvalidError(f"timestamp is more than {tolerance_s} s away from now")


def basic_auth(user: str, password: str) -> str:
    """An `Authorization` header value for HTTP basic auth (RFC 7617, UTF-8 credentials)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def basic_auth_matches(header: str | None, user: str, password: str) -> bool:
    """Whether `Authorization: Basic …` carries exactly these credentials.

    The credentials are compared as SHA-256 digests with `hmac.compare_digest`, so the time taken
    tells nothing about their content or length. The scheme is case-insensitive (RFC 9110).
    """
    scheme, _, encoded = (header or "").strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return False
    try:
        sent = base64.b64decode(encoded.strip(), validate=True)
    except ValueError:  # binascii.Error is a ValueError
        return False
    expected = f"{user}:{password}".encode()
    return hmac.compare_digest(hashlib.sha256(sent).digest(), hashlib.sha256(expected).digest())
