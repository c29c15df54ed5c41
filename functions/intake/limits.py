"""What one message's item may hold: DynamoDB refuses an item over 400 KB, and a refused write would fail the
worker on every retry. A message past its share is cut, never refused; what was cut is in the archive.

Shares, as the store writes them: the text in UTF-8, the metadata as JSON (non-ASCII escaped), the attachments'
descriptions in UTF-8. The model bounds the rest (subject, sender name, ids and keys: under 8 KB). In all, under
360 KB. Channels may cut more carefully first (email keeps its whole text in the archive); `fitted` is the bound
every message meets on its way into the store.
"""

from __future__ import annotations

import json
from typing import Any

from intake.model import Attachment, InboundMessage

TEXT_BYTES = 64 * 1024
METADATA_BYTES = 160 * 1024
ATTACHMENTS_BYTES = 128 * 1024
_CAPTION_BYTES = 1024


def clipped(text: str, limit: int) -> str:
    """The head of `text` that takes at most `limit` bytes in UTF-8 (cut between characters)."""
    data = text.encode("utf-8", "surrogatepass")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def stored_size(value: Any) -> int:
    """Bytes a metadata value takes on the item: the store writes metadata as JSON, non-ASCII escaped."""
    return len(json.dumps(value, sort_keys=True, default=str))


def fitted(message: InboundMessage, scale: float = 1) -> InboundMessage:
    """The message as its item can hold it. Past its share the text keeps its head, a metadata value gives way to
    a note of its size, and attachments after the first that fit are left off (a caption keeps its first 1 KB);
    `metadata["cut"]` names what was cut. The whole stays in the archive: the request as the provider sent it
    (`raw_archive_key`), for an email also its readable text (`metadata["full_text_key"]`). `scale` < 1 shrinks
    every share (a queue message has less room than an item)."""
    text = clipped(message.text, int(TEXT_BYTES * scale))
    metadata = _fitted_metadata(message.metadata, int(METADATA_BYTES * scale))
    attachments = _fitted_attachments(message.attachments, int(ATTACHMENTS_BYTES * scale))
    changed = {"text": text != message.text, "metadata": metadata != message.metadata}
    changed["attachments"] = attachments != message.attachments
    cut = [name for name, was_cut in changed.items() if was_cut]
    if not cut:
        return message
    return message.model_copy(update={"text": text, "metadata": {**metadata, "cut": cut}, "attachments": attachments})


def _fitted_metadata(metadata: dict[str, Any], share: int) -> dict[str, Any]:
    if stored_size(metadata) <= share:
        return metadata
    kept: dict[str, Any] = {}
    used = 64  # braces, and room for "cut"
    for key, value in metadata.items():
        size = stored_size(key) + stored_size(value) + 4
        if used + size > share:
            value = {"cut_bytes": stored_size(value)}
            size = stored_size(key) + stored_size(value) + 4
        if used + size > share:
            continue  # a name too long even for the note
        kept[key] = value
        used += size
    return kept


def _fitted_attachments(attachments: tuple[Attachment, ...], share: int) -> tuple[Attachment, ...]:
    kept: list[Attachment] = []
    used = 0
    for attachment in attachments:
        if attachment.caption is not None and len(attachment.caption.encode("utf-8", "surrogatepass")) > _CAPTION_BYTES:
            attachment = attachment.model_copy(update={"caption": clipped(attachment.caption, _CAPTION_BYTES)})
        described = json.dumps(attachment.model_dump(mode="json"), ensure_ascii=False)
        used += len(described.encode("utf-8", "surrogatepass"))
        if used > share:
            break
        kept.append(attachment)
    return tuple(kept)
