"""Sample provider requests (`events/`): each file says what to post; signatures are made at send time.

A sample is JSON: `{"description", "path", "headers", and one of "json" | "form" | "multipart" | "text"}`.
Signed forms are signed with the form's secret from `INTAKE_FORM_<ID>_SECRET`, Typeform ones likewise.
Twilio samples (`/webhooks/twilio/...`) get `X-Twilio-Signature` made with `INTAKE_TWILIO_AUTH_TOKEN` over
the URL the server will rebuild (its public base URL + path), as Twilio signs them. WhatsApp samples
(`/webhooks/whatsapp`) get `X-Hub-Signature-256` made with `INTAKE_WHATSAPP_APP_SECRET` over the body's bytes;
`"json_ascii": true` serializes the JSON with `\\uXXXX` escapes for non-ASCII, as Meta sends it.
SendGrid samples (`/webhooks/email/sendgrid`) get `Authorization: Basic …` with `INTAKE_SENDGRID_INBOUND_USER`
and `INTAKE_SENDGRID_INBOUND_PASSWORD`; Mailgun samples (`/webhooks/email/mailgun`) get the `timestamp` (now),
`token` (random) and `signature` fields Mailgun adds, signed with `INTAKE_MAILGUN_SIGNING_KEY`.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from intake.channels import forms, mailgun, sendgrid, signatures, twilio, whatsapp
from intake.config import Policy, PublicAuth, SignedAuth, TypeformAuth
from intake.secrets import Secrets


@dataclass(frozen=True)
class Prepared:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Sent:
    status: int
    body: dict[str, Any]


def prepare(
    sample: dict[str, Any],
    policy: Policy,
    secrets: Secrets,
    now: float | None = None,
    *,
    public_base_url: str = "http://127.0.0.1:8080",
) -> Prepared:
    path = sample["path"]
    if path.startswith(mailgun.PATH):
        sample = _sign_mailgun(sample, secrets, time.time() if now is None else now)
    headers = {k.lower(): v for k, v in sample.get("headers", {}).items()}
    if "json" in sample:
        body = json.dumps(sample["json"], ensure_ascii=bool(sample.get("json_ascii", False))).encode()
        headers.setdefault("content-type", "application/json")
    elif "form" in sample:
        body = urlencode(sample["form"], doseq=True).encode()
        headers.setdefault("content-type", "application/x-www-form-urlencoded")
    elif "multipart" in sample:
        body, headers["content-type"] = multipart(sample["multipart"])
    else:
        body = sample.get("text", "").encode()
    form_id = path.rsplit("/", 1)[-1] if path.startswith("/webhooks/forms/") else None
    form = policy.forms.get(form_id) if form_id else None
    if form is not None and form_id is not None and not isinstance(form.auth, PublicAuth):
        secret = secrets.get(forms.secret_name(form_id))
        if secret is None:
            raise LookupError(f"set INTAKE_{forms.secret_name(form_id)} to sign samples for form {form_id!r}")
        if isinstance(form.auth, SignedAuth):
            stamp = str(int(time.time() if now is None else now))
            headers["x-intake-timestamp"] = stamp
            headers["x-intake-signature"] = signatures.form_signature(secret, stamp, body)
        elif isinstance(form.auth, TypeformAuth):
            headers["typeform-signature"] = signatures.typeform_signature(secret, body)
    if path.startswith("/webhooks/twilio/"):
        path = _sign_twilio(path, headers, body, secrets, public_base_url)
    if path.startswith(whatsapp.PATH):
        headers[whatsapp.SIGNATURE_HEADER] = _sign_whatsapp(body, secrets)
    if path.startswith(sendgrid.PATH):
        headers["authorization"] = _sendgrid_auth(secrets)
    return Prepared(path, headers, body)


def _sign_twilio(path: str, headers: dict[str, str], body: bytes, secrets: Secrets, public_base_url: str) -> str:
    """Sign as Twilio does: URL + form params, or (a JSON body) URL with `bodySHA256` alone. Returns the path."""
    token = secrets.get(twilio.TOKEN_SECRET)
    if token is None:
        raise LookupError(f"set INTAKE_{twilio.TOKEN_SECRET} to sign Twilio samples")
    if headers.get("content-type", "").startswith(twilio.JSON):
        path += ("&" if "?" in path else "?") + "bodySHA256=" + signatures.twilio_body_hash(body)
        pairs: list[tuple[str, str]] = []
    else:
        pairs = parse_qsl(body.decode(), keep_blank_values=True)
    headers["x-twilio-signature"] = signatures.twilio_signature(token, public_base_url.rstrip("/") + path, pairs)
    return path


def _sign_whatsapp(body: bytes, secrets: Secrets) -> str:
    """`X-Hub-Signature-256` as Meta makes it: over the exact bytes sent, with the app secret."""
    secret = secrets.get(whatsapp.APP_SECRET)
    if secret is None:
        raise LookupError(f"set INTAKE_{whatsapp.APP_SECRET} to sign WhatsApp samples")
    return signatures.meta_signature(secret, body)


def _sendgrid_auth(secrets: Secrets) -> str:
    """The basic auth SendGrid sends when its Parse URL carries `user:password@`."""
    user, password = secrets.get(sendgrid.USER), secrets.get(sendgrid.PASSWORD)
    if user is None or password is None:
        missing = " and ".join(
            f"INTAKE_{name}" for name, value in ((sendgrid.USER, user), (sendgrid.PASSWORD, password)) if value is None
        )
        raise LookupError(f"set {missing} to send SendGrid samples")
    return signatures.basic_auth(user, password)


def _sign_mailgun(sample: dict[str, Any], secrets: Secrets, now: float) -> dict[str, Any]:
    """A copy of the sample with the `timestamp`, `token` and `signature` fields Mailgun posts."""
    key = secrets.get(mailgun.SIGNING_KEY)
    if key is None:
        raise LookupError(f"set INTAKE_{mailgun.SIGNING_KEY} to sign Mailgun samples")
    timestamp, token = str(int(now)), uuid.uuid4().hex
    signed = {"timestamp": timestamp, "token": token, "signature": signatures.mailgun_signature(key, timestamp, token)}
    if "multipart" in sample:
        spec = sample["multipart"]
        return {**sample, "multipart": {**spec, "fields": {**spec.get("fields", {}), **signed}}}
    return {**sample, "form": {**sample.get("form", {}), **signed}}


def multipart(spec: dict[str, Any]) -> tuple[bytes, str]:
    """`{"fields": {name: value}, "files": [{"field", "filename", "content_type", "base64" | "text"}]}`."""
    boundary = "intake-" + uuid.uuid4().hex
    chunks: list[bytes] = []
    for name, value in spec.get("fields", {}).items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for file in spec.get("files", []):
        content = base64.b64decode(file["base64"]) if "base64" in file else file.get("text", "").encode()
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{file["field"]}"; '
            f'filename="{file["filename"]}"\r\nContent-Type: {file["content_type"]}\r\n\r\n'
        )
        chunks.append(head.encode() + content + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def send(base_url: str, prepared: Prepared, timeout: float = 10.0) -> Sent:
    request = urllib.request.Request(  # noqa: S310 - an http(s) URL the caller gave
        base_url.rstrip("/") + prepared.path, data=prepared.body, headers=prepared.headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - our own URL
            return Sent(response.status, _json(response.read()))
    except urllib.error.HTTPError as error:
        return Sent(error.code, _json(error.read()))


def provider_times(sample: Any) -> list[int]:
    """The unix-second `timestamp`s in a sample (WhatsApp dates each message and status by its own)."""
    if isinstance(sample, dict):
        found = [int(v) for k, v in sample.items() if k == "timestamp" and isinstance(v, str) and v.isdigit()]
        return found + [t for v in sample.values() for t in provider_times(v)]
    if isinstance(sample, list):
        return [t for v in sample for t in provider_times(v)]
    return []


def moved(sample: Any, seconds: int) -> Any:
    """The sample with its provider timestamps `seconds` later: the demo dates its samples relative to now."""
    if isinstance(sample, dict):
        return {
            k: str(int(v) + seconds) if k == "timestamp" and isinstance(v, str) and v.isdigit() else moved(v, seconds)
            for k, v in sample.items()
        }
    if isinstance(sample, list):
        return [moved(v, seconds) for v in sample]
    return sample


def load(path: Path) -> dict[str, Any]:
    sample = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(sample, dict) or "path" not in sample:
        raise ValueError(f"{path}: a sample needs at least a 'path'")
    return sample


def _json(data: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(data) if data else {}
    except json.JSONDecodeError:
        return {"text": data.decode(errors="replace")}
    return parsed if isinstance(parsed, dict) else {"value": parsed}
