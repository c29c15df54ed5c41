"""multipart/form-data read byte for byte (RFC 7578), shared by the email adapters (SendGrid, Mailgun),
whose parts may carry raw MIME or 8-bit text of any charset that must survive exactly."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.message import EmailMessage, Message
from email.parser import Parser

from intake.errors import FieldInvalidError
from intake.mail_policy import DEFAULT
from intake.model import WebhookRequest


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str
    charset: str | None
    content: bytes  # exactly as posted


def text(content: bytes, *charsets: object) -> str:
    """Text in the first declared charset that reads it strictly, then UTF-8, then Windows-1252 (replacing
    what is left): never fails."""
    for candidate in (*charsets, "utf-8", "windows-1252"):
        if isinstance(candidate, str) and candidate.strip():
            try:
                return content.decode(candidate.strip())
            except (LookupError, UnicodeDecodeError):
                continue
    return content.decode("windows-1252", errors="replace")


def set_header(message: EmailMessage, name: str, value: str) -> None:
    """Add a header to a rebuilt message; one the modern policy refuses (a second Subject, a broken value)
    is left out rather than failing the whole message."""
    with contextlib.suppress(ValueError, HeaderParseError):
        message[name] = value


def media_type(value: str) -> tuple[str, str]:
    """(maintype, subtype) of a posted content type; anything unreadable is application/octet-stream."""
    maintype, _, subtype = value.split(";", 1)[0].strip().lower().partition("/")
    if not maintype or not subtype or "/" in subtype:
        return "application", "octet-stream"
    return maintype, subtype


def parts(request: WebhookRequest) -> list[Part]:
    """The parts of a multipart/form-data body, their content byte for byte."""
    envelope = Message()
    envelope["Content-Type"] = request.header("content-type") or ""
    boundary = envelope.get_boundary()
    if not boundary:
        raise FieldInvalidError("(body)", "is not a multipart/form-data body with a boundary")
    body = request.body
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    newline = b"\r\n"
    if delimiter not in b"\r\n" + body:
        delimiter, newline = b"\n--" + boundary.encode("latin-1"), b"\n"
    sections = (newline + body).split(delimiter)
    if len(sections) < 2:
        raise FieldInvalidError("(body)", "has no part delimited by its boundary")
    found: list[Part] = []
    for section in sections[1:]:
        if section.startswith(b"--"):
            break  # the close delimiter
        _, _, section = section.partition(newline)  # transport padding after the boundary
        head, separator, content = section.partition(newline + newline)
        if not separator:
            head, content = section, b""
        part = _part(head, content)
        if part is not None:
            found.append(part)
    return found


def first(found: list[Part], name: str) -> Part | None:
    """The first text field of that name (files are not fields)."""
    return next((part for part in found if part.name == name and part.filename is None), None)


def _part(head: bytes, content: bytes) -> Part | None:
    # Part headers are ASCII by the RFC, but file names arrive as raw UTF-8 too
    headers = Parser(policy=DEFAULT).parsestr(text(head) + "\n\n", headersonly=True)
    name = headers.get_param("name", header="content-disposition")
    if not isinstance(name, str):
        return None
    # The type as sent (validated where it is used): the stdlib reads a missing or broken one as text/plain
    content_type = str(headers.get("content-type") or "")
    return Part(name, headers.get_filename(), content_type, headers.get_content_charset(), content)
