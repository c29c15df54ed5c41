"""Sample provider requests (`events/<channel>/`): each file says what to post; signatures are made at send time.

A sample is JSON: `{"description", "path", "headers", and one of "json" | "form" | "multipart" | "text"}`.
`"json_ascii": true` serializes the JSON with `\\uXXXX` escapes for non-ASCII, as Meta sends it. The channel whose
route the path is signs the encoded request as its provider would (`intake.channels.contract.Channel.sign`), with
the secrets of `INTAKE_<NAME>` variables: a form's `FORM_<ID>_SECRET`, `TWILIO_AUTH_TOKEN` over the URL the server
will rebuild (its public base URL + path), Meta's app secrets over the body's bytes, SendGrid's basic auth, the
`timestamp`, `token` and `signature` fields Mailgun adds.
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
from urllib.parse import urlencode

from intake.channels import registry
from intake.channels.contract import Sample, SignContext
from intake.config import Policy
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
    signed: bool = True,
) -> Prepared:
    """The sample's body encoded, then (`signed`) signed as its channel's provider signs it (`Channel.sign`)."""
    path = sample["path"]
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
    found = registry.route_for("POST", path.split("?", 1)[0])
    if found is None or not signed:
        return Prepared(path, headers, body)
    context = SignContext(policy, secrets, time.time() if now is None else now, public_base_url)
    made = found[0].sign(Sample(path, headers, body), context)
    return Prepared(made.path, made.headers, made.body)


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


_MILLISECONDS = 10**11  # a `timestamp` above it is in milliseconds (Messenger's), else in seconds (WhatsApp's)


def provider_times(sample: Any) -> list[int]:
    """The `timestamp`s in a sample, in unix seconds: WhatsApp dates each message and status by its own (a string
    of seconds), Messenger and Instagram each event (a number of milliseconds)."""
    if isinstance(sample, dict):
        found = [
            int(v) // 1000 if int(v) > _MILLISECONDS else int(v)
            for k, v in sample.items()
            if k == "timestamp" and (isinstance(v, int) or (isinstance(v, str) and v.isdigit()))
        ]
        return found + [t for v in sample.values() for t in provider_times(v)]
    if isinstance(sample, list):
        return [t for v in sample for t in provider_times(v)]
    return []


def moved(sample: Any, seconds: int) -> Any:
    """The sample with its provider timestamps `seconds` later: the demo dates its samples relative to now."""
    if isinstance(sample, dict):
        return {k: _later(v, seconds) if k == "timestamp" else moved(v, seconds) for k, v in sample.items()}
    if isinstance(sample, list):
        return [moved(v, seconds) for v in sample]
    return sample


def _later(stamp: Any, seconds: int) -> Any:
    if isinstance(stamp, str) and stamp.isdigit():
        return str(int(stamp) + seconds)
    if isinstance(stamp, int) and not isinstance(stamp, bool):
        return stamp + seconds * 1000 if stamp > _MILLISECONDS else stamp + seconds
    return stamp


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
