"""Links a provider may fetch a reply's attachment from, on one machine: what S3's presigned URLs are in AWS.

`link(key)` signs the archive key and an expiry with a key kept in the data folder (`links.key`, made on first use);
`GET /_local/media?key=...&expires=...&signature=...` answers the file to whoever holds a valid, unexpired link (a
provider's fetcher has no other credentials), and 404 to anything else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from intake.archive import ArchiveKeyError

if TYPE_CHECKING:
    from intake.local.adapters import LocalAdapters

PATH = "/_local/media"
VALID_S = 3600
_KEY_FILE = "links.key"


def _secret(data_dir: Path) -> bytes:
    """The data folder's link key, made on first use (written whole, then linked into place: never half-read)."""
    path = data_dir / _KEY_FILE
    if not path.exists():
        temporary = data_dir / f"{_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(32))
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: theirs it is
        finally:
            temporary.unlink()
    return path.read_bytes()


def _signature(secret: bytes, key: str, expires: int) -> str:
    return hmac.new(secret, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def link(base_url: str, data_dir: Path, key: str, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + VALID_S)
    query = urlencode({"key": key, "expires": expires, "signature": _signature(_secret(data_dir), key, expires)})
    return f"{base_url.rstrip('/')}{PATH}?{query}"


def answer(event: dict[str, Any], local: LocalAdapters | None) -> dict[str, Any]:
    """The answer to a request for `PATH` on `intake serve`'s adapters (`local`; None elsewhere: not found)."""
    missing = {"statusCode": 404, "headers": {"content-type": "application/json"}, "body": '{"status": 404}'}
    query = event.get("queryStringParameters") or {}
    if event["requestContext"]["http"]["method"] != "GET" or event["rawPath"] != PATH or local is None:
        return missing
    key, expires, signature = query.get("key", ""), query.get("expires", ""), query.get("signature", "")
    if not key or not expires.isdigit() or int(expires) < time.time():
        return missing
    expected = _signature(_secret(local.data_dir), key, int(expires))
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return missing
    try:
        content = local.archive.get(key)
    except ArchiveKeyError:
        return missing
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/octet-stream", "cache-control": "no-store"},
        "body": base64.b64encode(content).decode(),
        "isBase64Encoded": True,
    }
