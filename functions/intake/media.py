"""Media a customer sent through a provider that keeps it (WhatsApp): downloaded into our archive by the worker.

A message arrives with its attachments `pending` (the provider's media id, mime type and sha256). The worker
downloads each one, checks its sha256, stores it, and marks it `stored`; after `attempts` failed tries it marks
it `unavailable`, and the message still becomes a ticket. `fetch_media` is pure apart from the `fetch`, `put`
and `sleep` it is given; `graph_fetcher` is the Graph API's `fetch`. `download` is one authenticated GET of a
provider's file, for the Graph API and for Twilio's voicemail recordings (`intake.channels.twilio.prepare_call`).

Graph API flow (WhatsApp Cloud API, "retrieve media URL" then "download media"):
`GET {graph}/{media_id}` with the bearer token → `{"url", "mime_type", "sha256", "file_size", "id"}`; then
`GET url` with the same bearer token → the bytes. The URL expires after 5 minutes, so every attempt asks for a
fresh one. The token is never logged, and the URL (whose query string authorizes the download) neither.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.client import HTTPException
from typing import Any

from intake.inbox import attachment_key
from intake.model import Attachment, InboundMessage
from intake.observability import logger

Fetch = Callable[[str], tuple[bytes, str]]  # media_id -> (content, mime type)
Put = Callable[[Attachment, bytes], None]  # store the content under attachment.s3_key

MAX_BYTES = 100 * 1024 * 1024  # WhatsApp's largest media (documents) is 100 MB
GENERIC_TYPE = "application/octet-stream"
USER_AGENT = "intake-media/1"
_CHUNK = 1024 * 1024
_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# No retry helps these: a bad token, a missing permission, a media that is gone
_PERMANENT_STATUSES = frozenset({401, 403, 404, 410})


class MediaUnavailableError(Exception):
    """One attempt to get a media failed: an HTTP error, a timeout, a sha256 mismatch, a file too large.

    `retryable` is False when another attempt cannot succeed (a rejected token, a deleted media, a file over
    the limit); `fetch_media` then stops trying. The message never holds the token or a download URL.
    """

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


def fetch_media(
    message: InboundMessage,
    fetch: Fetch,
    put: Put,
    *,
    attempts: int,
    sleep: Callable[[float], None] = time.sleep,
    base_delay_s: float = 0.5,
) -> InboundMessage:
    """Download the message's pending media into the archive; the message with its attachments updated.

    Each attachment that is `pending` and has a `media_id` gets up to `attempts` tries, `base_delay_s * 2**n`
    apart (none after the last). Stored: `put` under `attachment_key(...)`, then `stored` with its size, key
    and sha256. Still failing (or failing for good): `unavailable`. Download failures never raise; an error
    from `put` (our own archive) does, so that the queue redelivers the message instead of losing its media.
    Other attachments are left as they are.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    if not any(_is_pending(attachment) for attachment in message.attachments):
        return message
    attachments = tuple(
        _fetch_one(message, n, attachment, fetch, put, attempts, sleep, base_delay_s)
        if _is_pending(attachment)
        else attachment
        for n, attachment in enumerate(message.attachments, start=1)
    )
    return message.model_copy(update={"attachments": attachments})


def _is_pending(attachment: Attachment) -> bool:
    return attachment.media_status == "pending" and bool(attachment.media_id)


def _fetch_one(
    message: InboundMessage,
    n: int,
    attachment: Attachment,
    fetch: Fetch,
    put: Put,
    attempts: int,
    sleep: Callable[[float], None],
    base_delay_s: float,
) -> Attachment:
    media_id = attachment.media_id or ""
    keys = {"receipt_id": message.receipt_id, "media_id": media_id}
    for attempt in range(attempts):
        if attempt:
            sleep(base_delay_s * 2 ** (attempt - 1))
        try:
            content, mime_type = fetch(media_id)
            digest = hashlib.sha256(content).hexdigest()
            if attachment.sha256 is not None and digest != attachment.sha256:
                raise MediaUnavailableError("sha256 mismatch")
        except MediaUnavailableError as error:
            logger.warning(
                "media fetch failed",
                extra=keys | {"attempt": attempt + 1, "reason": error.reason, "retryable": error.retryable},
            )
            if not error.retryable:
                break
            continue
        stored = attachment.model_copy(
            update={
                "s3_key": attachment_key(message.receipt_id, message.received_at, n, attachment.filename),
                "size": len(content),
                "sha256": digest,
                "content_type": _content_type(attachment.content_type, mime_type),
                "media_status": "stored",
            }
        )
        put(stored, content)
        logger.info("media stored", extra=keys | {"attempt": attempt + 1, "size": len(content)})
        return stored
    logger.warning("media unavailable", extra=keys)
    return attachment.model_copy(update={"media_status": "unavailable"})


def _content_type(declared: str, fetched: str) -> str:
    """The type the message declared, unless it said nothing useful and the provider did."""
    if declared.strip() and declared.strip().lower() != GENERIC_TYPE:
        return declared
    return fetched.strip() or declared or GENERIC_TYPE


def graph_fetcher(base_url: str, token: str, *, timeout_s: float = 10.0, max_bytes: int = MAX_BYTES) -> Fetch:
    """The Graph API's `fetch`: `base_url` is the versioned root (`https://graph.facebook.com/v21.0`).

    One call = one attempt: a fresh media URL, then its bytes, checked against the size and the sha256 that
    the Graph API gives. Every failure is a `MediaUnavailableError`. `timeout_s` bounds each connect and read.
    """
    root = base_url.rstrip("/")
    _require_http(root)
    opener = urllib.request.build_opener()

    def get(url: str, what: str) -> tuple[bytes, str]:
        return download(
            url, f"Bearer {token}", what=what, timeout_s=timeout_s, max_bytes=max_bytes, opener=opener, detail=_graph
        )

    def fetch(media_id: str) -> tuple[bytes, str]:
        if not media_id:
            raise MediaUnavailableError("no media id", retryable=False)
        raw, _ = get(f"{root}/{urllib.parse.quote(media_id, safe='')}", "media url")
        info = _media_info(raw)
        size = _as_int(info.get("file_size"))
        if size is not None and size > max_bytes:
            raise MediaUnavailableError(f"media: {size} bytes, over the {max_bytes} limit", retryable=False)
        content, served_type = get(info["url"], "media download")
        expected = sha256_hex(info.get("sha256"))
        if expected is not None and hashlib.sha256(content).hexdigest() != expected:
            raise MediaUnavailableError("sha256 mismatch with the Graph API")
        mime_type = info.get("mime_type")
        return content, mime_type if isinstance(mime_type, str) and mime_type else served_type

    return fetch


def download(
    url: str,
    authorization: str,
    *,
    what: str,
    timeout_s: float,
    max_bytes: int = MAX_BYTES,
    opener: urllib.request.OpenerDirector | None = None,
    detail: Callable[[urllib.error.HTTPError], str] = lambda error: "",
) -> tuple[bytes, str]:
    """GET a provider's file with its `Authorization` header: its bytes (at most `max_bytes`) and content type, or a
    `MediaUnavailableError` saying why (`what` names it; `detail` adds what the provider's error body says).
    `timeout_s` bounds each connect and read."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310 (the provider's API)
    # Unredirected: were the download redirected to another host, the credentials would not follow it
    request.add_unredirected_header("Authorization", authorization)
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=timeout_s) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise MediaUnavailableError(f"{what}: larger than {max_bytes} bytes", retryable=False)
            body = _read(response, max_bytes, what)
            return body, response.headers.get_content_type() if "Content-Type" in response.headers else ""
    except urllib.error.HTTPError as error:
        status, said = error.code, detail(error)
        error.close()
        retryable = status not in _PERMANENT_STATUSES
        raise MediaUnavailableError(f"{what}: HTTP {status}{said}", retryable=retryable) from None
    except TimeoutError:
        raise MediaUnavailableError(f"{what}: timed out after {timeout_s} s") from None
    except urllib.error.URLError as error:
        reason = "timed out" if isinstance(error.reason, TimeoutError) else type(error.reason).__name__
        raise MediaUnavailableError(f"{what}: {reason}") from None
    except (OSError, HTTPException) as error:
        raise MediaUnavailableError(f"{what}: {type(error).__name__}") from None


def _graph(error: urllib.error.HTTPError) -> str:
    """` (Graph error 190)`: the Graph API's error code from its error body, where it gives one."""
    code = _graph_error_code(error)
    return f" (Graph error {code})" if code is not None else ""


def _media_info(raw: bytes) -> dict[str, Any]:
    try:
        info = json.loads(raw)
    except ValueError:
        raise MediaUnavailableError("media url: not JSON") from None
    if not isinstance(info, dict) or not isinstance(info.get("url"), str):
        raise MediaUnavailableError("media url: no url in the answer")
    try:
        _require_http(info["url"])
    except ValueError:
        raise MediaUnavailableError("media url: not an http(s) URL", retryable=False) from None
    return info


def _read(response: Any, max_bytes: int, what: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while chunk := response.read(min(_CHUNK, max_bytes + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise MediaUnavailableError(f"{what}: larger than {max_bytes} bytes", retryable=False)
    return b"".join(chunks)


def _graph_error_code(error: urllib.error.HTTPError) -> int | None:
    """The Graph API's numeric error code (190: bad token), from its error body; never its message."""
    try:
        body = json.loads(error.read(4096))
    except (ValueError, OSError, HTTPException):
        return None
    error_part = body.get("error") if isinstance(body, dict) else None
    code = error_part.get("code") if isinstance(error_part, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _require_http(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("the Graph API and its media URLs must be http(s) URLs")


def _as_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def sha256_hex(value: object) -> str | None:
    """A sha256 as lowercase hex, from hex or from base64 (WhatsApp webhooks send base64); None if neither."""
    if not isinstance(value, str):
        return None
    if _HEX_SHA256.match(value.lower()):
        return value.lower()
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest.hex() if len(digest) == 32 else None
