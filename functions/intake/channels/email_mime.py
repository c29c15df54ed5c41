"""Raw MIME → `ParsedEmail`: what one inbound email says, whoever delivered it (SES, SendGrid raw, Mailgun).

Headers, the readable text (HTML converted when there is no text/plain), the new part of a reply (quoted
history and signature removed, with `mail-parser-reply`), attachments and inline images, and whether the
message is an auto-reply, a bounce or list mail that must open no ticket. `parse` never raises on bad
mail: a header it cannot read is missing, a part it cannot read or may not keep is listed in `dropped`.
Size and shape have limits, not crashes: past `MAX_PARTS` MIME parts or `MAX_DEPTH` levels of nesting the
parser reads no further (the raw message, archived, still holds it all) and `dropped` says what was left.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import mimetypes
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.feedparser import BytesFeedParser
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any, Self

from mailparser_reply import EmailMessage as ReplyMessage  # type: ignore[import-untyped]

from intake.limits import clipped
from intake.mail_policy import DEFAULT

DEFAULT_MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_PARTS = 100  # MIME parts read, containers included, in the order they come
MAX_DEPTH = 32  # levels of multiparts and attached messages (real mail: under 10; a forward adds two)
MAX_NAME_BYTES = 255  # a file name or a Content-ID, in UTF-8 (what file systems allow)
MAX_HTML_CHARS = 256 * 1024  # of an HTML body, read as text (converting takes 15 s a megabyte)
_FEED_BYTES = 64 * 1024  # the parser is fed this much at a time, so that it stops soon after MAX_PARTS
AUTO_REPLY = "auto-reply"
BOUNCE = "bounce"
LIST = "list"
REPORT = "report"  # machine reports: abuse feedback (ARF), DMARC and TLS reports

# Languages whose attribution lines ("On … wrote:", "Le … a écrit :", "Am … schrieb …:") and Outlook
# header blocks separate a reply from the history it quotes
REPLY_LANGUAGES = ("en", "fr", "de", "es", "it", "nl")
# Past this, only the head of the text goes through the reply separator (its regexes are not linear)
_SEPARATE_AT_MOST = 100_000
_PRECEDENCE_AUTO = frozenset({"bulk", "junk", "list", "auto_reply"})
# Charsets trusted before UTF-8: multibyte ones a short UTF-8 text could be mistaken for, and 7-bit
# stateful ones whose bytes are all ASCII. The others (single-byte) map nearly any byte to some character,
# so a body that is valid UTF-8 was UTF-8, whatever it says.
_TRUSTED = frozenset(
    {
        "shift_jis",
        "cp932",
        "euc_jp",
        "iso2022_jp",
        "iso2022_jp_1",
        "iso2022_jp_2",
        "iso2022_jp_3",
        "iso2022_jp_ext",
        "iso2022_kr",
        "gb2312",
        "gbk",
        "gb18030",
        "hz",
        "big5",
        "big5hkscs",
        "euc_kr",
        "cp949",
        "utf-7",
        "utf-16",
        "utf-16-le",
        "utf-16-be",
        "utf-32",
    }
)
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(=\?[^?\s]+\?[QqBb]\?[^?\s]*\?=)\s+(?==\?)")
_MSG_ID = re.compile(r"<([^<>\s]+)>")
_CHARSET_ALIASES = {"unicode-1-1-utf-8": "utf-8", "utf8mb4": "utf-8", "x-sjis": "shift_jis", "windows-31j": "cp932"}
_QUOTED_LOCAL = re.compile(r'"[^"]*"@[^\s@"]+')  # `"john doe"@example.com`: a space, and a real mailbox
# An address header is read this far (thousands of addresses; parsing costs a second per 10,000)
_ADDRESS_CHARS = 64 * 1024
_BARE_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_FORWARD_MARKER = re.compile(
    r"^[ \t>]*(?:-{2,} ?Forwarded message ?-{2,}|"
    r"Begin forwarded message:|-{2,} ?Message transféré ?-{2,}|-{2,} ?Weitergeleitete Nachricht ?-{2,})[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
# An attribution line wrapped by the sender's client: joined before the separator looks for it
_WRAPPED_ATTRIBUTION = re.compile(
    r"^((?:> ?)*(?:On|Le|Am|El|Il|Op) [^\n]*[^:\n])\n((?:> ?)*[^\n]*(?:wrote|écrit|schrieb|escribió|scritto|geschreven)"
    r"[^\n]{0,80}:)[ \t]*$",
    re.MULTILINE,
)
_SIGNATURE_OPENERS = re.compile(r"^(?:--|__|sent from|get outlook|envoyé de|gesendet von)", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n{3,}")
_SPACES = re.compile(r"[ \t\f\v\xa0\u200b]+")


@dataclass(frozen=True)
class EmailPart:
    filename: str
    content_type: str
    content: bytes
    content_id: str | None  # without angle brackets
    inline: bool  # shown in the body (an image the HTML refers to by cid:), not offered as a download


@dataclass(frozen=True)
class ParsedEmail:
    message_id: str | None  # without angle brackets
    in_reply_to: tuple[str, ...]  # ids without angle brackets
    references: tuple[str, ...]
    from_name: str | None
    from_address: str | None  # lower-cased, plus-tags kept
    from_header: str  # every From header as written (encoded words decoded), "" if none
    reply_to: str | None
    to: tuple[str, ...]  # addresses, lower-cased
    cc: tuple[str, ...]
    subject: str  # RFC 2047 decoded, whitespace-normalized, "" if none
    date: datetime | None  # UTC, None if missing or unparseable
    text: str  # the new part: quoted history and signature removed
    full_text: str  # the whole readable text (HTML converted when there is no text/plain)
    attachments: tuple[EmailPart, ...]  # attachments and inline images, each <= max_attachment_bytes
    dropped: tuple[tuple[str, str], ...]  # (filename, reason) of the parts refused, never silently lost
    auto: str | None  # why it must open no ticket: "auto-reply" | "bounce" | "list" | "report" | None
    list_id: str | None


def parse(raw: bytes, *, max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES) -> ParsedEmail:
    """Parse one raw RFC 5322 message. Never raises on bad mail."""
    message, unread = _bounded_parse(raw)
    headers = _Headers(message)
    body = _Body(max_attachment_bytes)
    body.walk(message)
    if body.over_parts or unread:
        body.dropped.append(("the rest of the message", f"over the limit of {MAX_PARTS} MIME parts"))
    from_name, from_address = _first_mailbox(headers.get("from"))
    subject = " ".join(decode_words(headers.get("subject")).split())
    try:
        auto = _auto(body.facts(message), headers, from_address, subject)
    except Exception:  # a Content-Type the policy cannot read: decided on the headers alone
        auto = _auto(_Facts("text/plain", {}, None, None), headers, from_address, subject)
    full_text = _joined(body.texts)
    return ParsedEmail(
        message_id=_first_id(headers.get("message-id")),
        in_reply_to=_ids(headers.get("in-reply-to")),
        references=_ids(headers.get("references")),
        from_name=from_name,
        from_address=from_address,
        from_header=decode_words(", ".join(headers.get_all("from"))),
        reply_to=first_address(headers.get("reply-to")),
        to=_addresses(headers.get_all("to")),
        cc=_addresses(headers.get_all("cc")),
        subject=subject,
        date=_date(headers.get("date")),
        text=new_part(full_text),
        full_text=full_text,
        attachments=tuple(body.attachments),
        dropped=tuple(body.dropped),
        auto=auto,
        list_id=_list_id(headers.get("list-id")),
    )


def first_address(value: str | None) -> str | None:
    """The first address of a header value (`"Ann" <Ann+x@Example.com>, …` → `ann+x@example.com`)."""
    return _first_mailbox(value)[1]


# ------------------------------------------------------------------------------ the MIME tree, within limits


class _Part(EmailMessage):
    """A MIME part as the parser builds it, numbered in the order parts come and placed at a depth. Past
    `MAX_PARTS` or `MAX_DEPTH` it tells the parser it is application/octet-stream, so the parser takes its bytes
    whole and never looks inside (the stdlib's parser recurses once per level: 2,000 levels overflow the stack).
    """

    def __init__(self, tally: list[int]) -> None:
        super().__init__(policy=DEFAULT)
        tally[0] += 1
        self.number = tally[0]
        self.depth = 0
        self._parsed: dict[tuple[str, int], Any] = {}

    def attach(self, payload: Self) -> None:  # type: ignore[override]  # as MIMEPart's own
        payload.depth = self.depth + 1  # the parser attaches each part to its parent before reading its headers
        super().attach(payload)

    @property
    def beyond(self) -> str | None:
        """Why this part was not read, if it was not."""
        if self.number > MAX_PARTS:
            return f"over the limit of {MAX_PARTS} MIME parts"
        if self.depth > MAX_DEPTH:
            return f"nested more than {MAX_DEPTH} levels deep"
        return None

    def get(self, name: str, failobj: Any = None) -> Any:
        """A header the policy parses into an object; one too long to parse in good time reads as missing. Each is
        parsed once: the parser and the walk ask for a part's Content-Type about 30 times per email."""
        key = (name.lower(), len(self))  # the parser only appends headers: a new one is a new key
        value = self._parsed.get(key, _UNPARSED)
        if value is _UNPARSED:
            if key[0] in _STRUCTURE and any(
                len(raw) > _MAX_STRUCTURE_CHARS for found, raw in self.raw_items() if found.lower() == key[0]
            ):
                value = _MISSING
            else:
                value = super().get(name, _MISSING)
            self._parsed[key] = value
        return failobj if value is _MISSING else value

    def get_content_type(self) -> str:
        if self.beyond is not None:
            return "application/octet-stream"
        try:
            return super().get_content_type()
        except RecursionError:  # a header value nested past what the stdlib's header parser can read
            return self.get_default_type()


# Headers read as objects (their parameters: a boundary, a charset, a file name). The stdlib parses them in time
# that grows with the square of their parameters: 400 kB of Content-Type took minutes. Real ones are short.
_STRUCTURE = frozenset({"content-type", "content-disposition", "content-transfer-encoding", "content-id"})
_MAX_STRUCTURE_CHARS = 8 * 1024
_UNPARSED, _MISSING = object(), object()


def _bounded_parse(raw: bytes) -> tuple[Message, bool]:
    """The message's MIME tree, and whether bytes were left unread because the parts ran over `MAX_PARTS`."""
    tally = [0]
    parser = BytesFeedParser(lambda: _Part(tally), policy=DEFAULT)
    unread = False
    for start in range(0, len(raw), _FEED_BYTES):
        parser.feed(raw[start : start + _FEED_BYTES])
        if tally[0] > MAX_PARTS:
            unread = start + _FEED_BYTES < len(raw)
            break
    return parser.close(), unread


# ------------------------------------------------------------------------------ headers


class _Headers:
    """Header values as sent (unfolded), read without the policy's header objects, which raise on some
    malformed values. Raw 8-bit bytes in a header are decoded as UTF-8, else Windows-1252."""

    def __init__(self, message: Message) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in message.raw_items():
            self._values.setdefault(name.strip().lower(), []).append(_unfolded(value))

    def get(self, name: str) -> str | None:
        values = self._values.get(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        return self._values.get(name, [])


def _unfolded(value: Any) -> str:
    text = str(value)
    if any("\udc80" <= c <= "\udcff" for c in text):  # undecodable bytes, kept by the parser as surrogates
        text = decode_bytes(text.encode("ascii", "surrogateescape"), None)
    return re.sub(r"\r?\n[ \t]*", " ", text).strip()


def decode_words(value: str | None) -> str:
    """RFC 2047 encoded words (`=?utf-8?Q?…?=`, `=?iso-8859-1?B?…?=`) decoded; the space between two adjacent
    words dropped; a word that cannot be decoded kept as written."""
    if not value:
        return ""
    joined = _BETWEEN_WORDS.sub(r"\1", value)

    def decoded(match: re.Match[str]) -> str:
        charset, encoding, data = match[1].split("*", 1)[0], match[2].upper(), match[3]
        try:
            if encoding == "Q":
                payload = binascii.a2b_qp(data.replace("_", " ").encode("ascii"), header=True)
            else:
                payload = base64.b64decode(data + "=" * (-len(data) % 4))
        except (ValueError, UnicodeEncodeError):
            return match[0]
        return decode_bytes(payload, charset)

    return _ENCODED_WORD.sub(decoded, joined)


def _mailboxes(values: list[str]) -> list[tuple[str, str]]:
    """The (name, address) pairs of header values, each read up to its first `_ADDRESS_CHARS` characters."""
    found = []
    heads = [v[:_ADDRESS_CHARS] for v in values]
    for name, address in _address_pairs([decode_words(v) if "=?" in v and "@" not in v else v for v in heads]):
        address = address.strip().strip("<>").lower()
        if "@" in address and (" " not in address or _QUOTED_LOCAL.fullmatch(address)):
            found.append((decode_words(name).strip().strip('"').strip(), address))
    return found


def _address_pairs(values: list[str]) -> list[tuple[str, str]]:
    """`getaddresses` as Python reads addresses since 3.13 (strictly: CVE-2023-27043) and, where that reads none
    (one malformed value fails the whole list: `a@x.org,, ,<>`, which Lambda's Python 3.13 read as no recipient),
    leniently, as Python 3.11 did; a Python without strict parsing reads them leniently already."""
    pairs = getaddresses(values)
    if not values or any(address for _, address in pairs):
        return pairs
    try:
        lenient: list[tuple[str, str]] = getaddresses(values, strict=False)  # type: ignore[call-arg,unused-ignore]
    except TypeError:
        return pairs
    return lenient


def _first_mailbox(value: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    found = _mailboxes([value])
    if not found:  # unbalanced quotes or brackets: the first thing that looks like an address
        bare = _BARE_ADDRESS.search(value[:4096])  # the regex is quadratic in what holds no address
        return None, (bare[0].lower() if bare else None)
    name, address = found[0]
    return (" ".join(name.split()) or None), address


def _addresses(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(address for _, address in _mailboxes(values)))


def _ids(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    found = _MSG_ID.findall(value) or [token for token in value.split() if "@" in token]
    return tuple(dict.fromkeys(found))


def _first_id(value: str | None) -> str | None:
    found = _ids(value)
    if found:
        return found[0]
    token = (value or "").strip().strip("<>").strip()
    return token if token and " " not in token else None


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # "-0000": the time is UTC, the sender's zone unknown
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _list_id(value: str | None) -> str | None:
    if not value:
        return None
    found = _MSG_ID.search(value)
    return found[1] if found else (value.strip() or None)


# ------------------------------------------------------------------------------ auto-replies, bounces, lists


# Subjects that only machines write (anchored at the start: a customer forwarding one writes "Fwd: ...")
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver(ed|able)|delivery (status notification|failure|has failed|notification)|mail delivery (failed|failure"
    r"|system)|returned mail|failure notice|non-?deliver(y|able)|mail could not be delivered|message not delivered)",
    re.IGNORECASE,
)
_BOUNCE_PHRASE = re.compile(r"(: non remis\b|配信できません|メールエラー)")  # anywhere in the subject
_AUTO_SUBJECT = re.compile(
    r"(auto(matic|matische)?[ -]?(reply|response|antwort|respuesta|réponse)|out of (the )?office|abwesenheitsnotiz)",
    re.IGNORECASE,
)
_REPORT_SUBJECT = re.compile(r"(^report domain:|dmarc (aggregate|failure|forensic) report|^tls report)", re.IGNORECASE)
_NO_REPLY = re.compile(r"(no-?reply|do-?not-?reply)\b", re.IGNORECASE)
_LIST_HEADERS = ("list-id", "list-post", "list-unsubscribe", "mailing-list")


def _auto(root: _Facts, headers: _Headers, from_address: str | None, subject: str) -> str | None:
    """Why the message is a machine's, not a person's (None: a person's). The RFC 3834 and list headers first, then
    the delivery reports' MIME type and the mail system's own senders, then subjects only machines write."""
    report_type = root.params.get("report-type", "").lower()
    if root.content_type == "multipart/report" and report_type in ("delivery-status", ""):
        return BOUNCE
    if root.content_type == "multipart/report" and report_type != "disposition-notification":
        return REPORT  # abuse feedback, TLS reports
    local = (from_address or "").partition("@")[0]
    if local == "mailer-daemon" or _BOUNCE_SUBJECT.match(subject) or _BOUNCE_PHRASE.search(subject):
        return BOUNCE
    precedence = (headers.get("precedence") or "").strip().lower()
    listed = any(headers.get(name) for name in _LIST_HEADERS)
    # list headers alone are not enough: a group address (support@ as a Google Group) adds them to customers' mail;
    # with a list precedence, from a no-reply sender, a one-click unsubscribe (RFC 8058: bulk senders) or a list
    # server's own header, it is list or bulk mail
    one_click = headers.get("list-unsubscribe-post") and precedence not in _PRECEDENCE_AUTO
    if (listed and (precedence == "list" or _NO_REPLY.match(local))) or one_click:
        return LIST
    if headers.get("x-mlserver") or headers.get("x-ml-server"):
        return LIST
    if _REPORT_SUBJECT.search(subject):
        return REPORT
    auto_submitted = (headers.get("auto-submitted") or "").split(";")[0].strip().lower()
    suppress = {token.strip().lower() for token in (headers.get("x-auto-response-suppress") or "").split(",")}
    if (
        (auto_submitted and auto_submitted != "no")
        or headers.get("x-autoreply") is not None
        or headers.get("x-autorespond") is not None
        or precedence in _PRECEDENCE_AUTO
        or suppress & {"oof", "all"}
        or (headers.get("return-path") or "").strip() in ("<>", "< >")
        or (root.content_type == "multipart/report" and report_type == "disposition-notification")  # read receipt
        or _AUTO_SUBJECT.match(subject)
    ):
        return AUTO_REPLY
    return None


# ------------------------------------------------------------------------------ body and parts


@dataclass(frozen=True)
class _Facts:
    """A part's Content-Type and Content-Disposition, read once (the policy re-parses a header per access)."""

    content_type: str
    params: dict[str, str]  # of Content-Type, names lower-cased
    disposition: str | None
    filename: str | None

    @property
    def maintype(self) -> str:
        return self.content_type.split("/", 1)[0]

    @classmethod
    def of(cls, part: Message) -> _Facts:
        content_type, params = part.get_default_type(), {}
        header = part.get("content-type")
        if header is not None:
            found = str(getattr(header, "content_type", "") or "").lower()
            content_type = found if found.count("/") == 1 and len(found) <= 255 else "text/plain"  # RFC 6838
            params = {str(k).lower(): str(v) for k, v in dict(getattr(header, "params", {}) or {}).items()}
        disposition, filename = None, None
        header = part.get("content-disposition")
        if header is not None:
            disposition = str(getattr(header, "content_disposition", "") or "").lower() or None
            filename = dict(getattr(header, "params", {}) or {}).get("filename")
        return cls(content_type, params, disposition, _clean_filename(filename or params.get("name")))


def _clean_filename(name: object) -> str | None:
    if isinstance(name, tuple):  # an RFC 2231 value the stdlib left undecoded
        name = name[2]
    if not name:
        return None
    cleaned = _paired(decode_words(_unfolded(name)).replace("\x00", ""))
    return cleaned.rsplit("/", 1)[-1].rsplit("\\", 1)[-1].strip() or None


class _Body:
    """One walk of the MIME tree: readable texts in order, attachments, and what was refused."""

    def __init__(self, max_attachment_bytes: int) -> None:
        self.max = max_attachment_bytes
        self.texts: list[str] = []
        self.attachments: list[EmailPart] = []
        self.dropped: list[tuple[str, str]] = []
        self.over_parts = 0  # parts past MAX_PARTS: listed once, as the rest of the message
        self._parts = 0
        self._facts: dict[int, tuple[Message, _Facts]] = {}  # by id(); holds the part so the id stays its own

    def facts(self, part: Message) -> _Facts:
        known = self._facts.get(id(part))
        if known is None:
            known = self._facts[id(part)] = (part, _Facts.of(part))
        return known[1]

    def walk(self, part: Message, *, readable: bool = True) -> None:
        """`readable` is False inside an alternative that was not chosen: its texts are the same content
        again, but an image it holds is still an attachment."""
        counted = False
        if isinstance(part, _Part) and part.number > MAX_PARTS:
            self.over_parts += 1
            return
        if isinstance(part, _Part) and part.beyond is not None:  # too deep: its bytes are in the raw message
            self._parts += 1
            self.dropped.append((f"part-{self._parts}", part.beyond))
            return
        try:
            facts = self.facts(part)
            if part.is_multipart() and facts.maintype == "multipart":
                children = [c for c in part.get_payload() if isinstance(c, Message)]
                chosen = self._preferred(children) if facts.content_type == "multipart/alternative" else None
                for child in children:
                    self.walk(child, readable=readable and (chosen is None or child is chosen))
                return
            self._parts, counted = self._parts + 1, True  # leaves are numbered: part-N names the unnamed
            self._leaf(part, facts, readable=readable)
        except Exception:  # the stdlib raises assorted errors on malformed parts: the part is listed as dropped
            self._parts += 0 if counted else 1
            self.dropped.append((f"part-{self._parts}", "unreadable"))

    def _leaf(self, part: Message, facts: _Facts, *, readable: bool) -> None:
        content_type, disposition, filename = facts.content_type, facts.disposition, facts.filename
        if content_type in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            if readable:
                text = _text_of(part, facts)
                if content_type == "text/html":
                    if len(text) > MAX_HTML_CHARS:
                        self.dropped.append((f"part-{self._parts}.html", f"HTML past {MAX_HTML_CHARS} characters"))
                    text = html_to_text(text[:MAX_HTML_CHARS])
                if text.strip():
                    self.texts.append(text)
            return
        content = _content(part, facts)
        if not filename:
            filename = f"message-{self._parts}.eml" if content_type == "message/rfc822" else None
        name = clipped(filename or f"part-{self._parts}{_extension(content_type)}", MAX_NAME_BYTES)
        if len(content) > self.max:
            self.dropped.append((name, f"{len(content)} bytes is over the limit of {self.max}"))
            return
        raw_id = part.get("content-id")
        content_id = _first_id(str(raw_id)) if raw_id else None
        if content_id is not None and len(content_id.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            content_id = None  # no HTML refers to a Content-ID that long: an attachment like any other
        inline = disposition == "inline" or (disposition is None and content_id is not None)
        self.attachments.append(EmailPart(name, content_type, content, content_id, inline))

    def _preferred(self, children: list[Message]) -> Message | None:
        """Of a multipart/alternative, the text/plain version, else the HTML one, else the last."""
        for wanted in ("text/plain", "text/html"):
            for child in children:
                if self._holds(child, wanted):
                    return child
        return children[-1] if children else None

    def _holds(self, part: Message, content_type: str) -> bool:
        facts = self.facts(part)
        if facts.maintype == "multipart" and part.is_multipart():
            first = next((c for c in part.get_payload() if isinstance(c, Message)), None)
            return first is not None and self._holds(first, content_type)
        return facts.content_type == content_type and facts.disposition != "attachment"


def _extension(content_type: str) -> str:
    special = {
        "message/delivery-status": ".txt",
        "message/disposition-notification": ".txt",
        "text/rfc822-headers": ".txt",
        "text/plain": ".txt",
    }
    return special.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"


def _content(part: Message, facts: _Facts) -> bytes:
    if facts.maintype == "message":  # message/rfc822, message/delivery-status: as written
        children = part.get_payload()
        if isinstance(children, list):
            return b"".join(_message_bytes(c) for c in children if isinstance(c, Message))
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _message_bytes(message: Message) -> bytes:
    return message.as_bytes(policy=DEFAULT.clone(linesep="\r\n"))


def _text_of(part: Message, facts: _Facts) -> str:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    text = decode_bytes(data, facts.params.get("charset")).replace("\r\n", "\n").replace("\r", "\n")
    text = text.removeprefix("\ufeff")
    if facts.params.get("format", "").lower() == "flowed":
        text = _unflowed(text, delsp=facts.params.get("delsp", "").lower() == "yes")
    return text


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in the charset they claim, unless they are not: pure ASCII as is; valid UTF-8 as UTF-8 (a body
    labelled us-ascii or ISO-8859-1 that holds UTF-8 is common, the reverse cannot be valid UTF-8); then
    the declared charset, then Windows-1252, then Latin-1, which maps every byte."""
    declared = _codec(charset)
    if declared in _TRUSTED:
        try:
            return _paired(data.decode(declared))
        except UnicodeDecodeError:
            pass
    if data.isascii():
        return data.decode("ascii")
    for codec in ("utf-8", declared, "cp1252"):
        if codec:
            try:
                return _paired(data.decode(codec))
            except UnicodeDecodeError:
                continue
    return data.decode("latin-1")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _paired(text: str) -> str:
    """Text without unpaired surrogates (UTF-7 and UTF-16 can encode one): each becomes U+FFFD, since no
    UTF-8 (what every store and queue writes) can hold it."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    name = charset.strip().strip('"').lower()
    name = {"unicode-1-1-utf-8": "utf-8", "utf8mb4": "utf-8", "x-sjis": "shift_jis", "windows-31j": "cp932"}.get(
        name, name
    )
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):  # ValueError: a damaged name (e.g. an embedded NUL)
        return None


def _unflowed(text: str, *, delsp: bool) -> str:
    """RFC 3676 format=flowed: a line ending in a space continues on the next (not the "-- " signature line)."""
    lines: list[str] = []
    carry = ""
    for line in text.split("\n"):
        if line.startswith(" "):  # space-stuffed
            line = line[1:]
        if line.endswith(" ") and line != "-- " and not line.startswith(">"):
            carry += line[:-1] if delsp else line
            continue
        lines.append(carry + line)
        carry = ""
    if carry:
        lines.append(carry)
    return "\n".join(lines)


def _joined(texts: list[str]) -> str:
    return _BLANK_LINES.sub("\n\n", "\n\n".join(t.strip("\n") for t in texts)).strip()


# ------------------------------------------------------------------------------ HTML


_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tr",
        "ul",
    ]
)


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: paragraphs and line breaks kept, list items marked, cells spaced,
    scripts, styles and comments gone. BeautifulSoup (MIT) with the stdlib's HTML parser, read in one pass
    (editing the tree in place took time with the square of a parent's children: minutes for 1 MB)."""
    from bs4 import BeautifulSoup  # imported here: HTML-only mail is the rarer case, and cold starts count
    from bs4.element import CData, NavigableString, Tag

    pieces: list[str] = []
    open_tags: list[Tag] = []
    hidden = 0  # open tags whose content is never shown (scripts, styles, the head)
    in_pre = 0

    def opened(tag: Tag) -> None:
        nonlocal hidden, in_pre
        hidden += tag.name in _HIDDEN
        in_pre += tag.name == "pre"
        if not hidden:
            pieces.append(_OPENING.get(tag.name) or ("\n" if tag.name in _BLOCKS else ""))
        open_tags.append(tag)

    def closed(tag: Tag) -> None:
        nonlocal hidden, in_pre
        if not hidden:
            pieces.append(_CLOSING.get(tag.name) or ("\n" if tag.name in _BLOCKS else ""))
        hidden -= tag.name in _HIDDEN
        in_pre -= tag.name == "pre"

    for node in BeautifulSoup(html, "html.parser").descendants:
        while open_tags and open_tags[-1] is not node.parent:
            closed(open_tags.pop())
        if isinstance(node, Tag):
            opened(node)
        elif not hidden and type(node) in (NavigableString, CData):  # not comments, doctype, instructions
            pieces.append(str(node) if in_pre else re.sub(r"\s+", " ", str(node)))
    while open_tags:
        closed(open_tags.pop())
    lines = [" ".join(_SPACES.sub(" ", line).split()) for line in "".join(pieces).split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


_HIDDEN = frozenset({"script", "style", "head", "title", "noscript", "template"})
_OPENING = {"br": "\n", "li": "\n- "}
_CLOSING = {"li": "\n", "td": "\t", "th": "\t"}


# ------------------------------------------------------------------------------ the new part of a reply


def new_part(text: str) -> str:
    """What the sender wrote this time: the quoted history (under "On … wrote:", "Le … a écrit :",
    "-----Original Message-----", an Outlook "From: … Sent: …" block, or "> " lines) and the signature
    removed. A forwarded message is content, not history: it is kept under the sender's own note."""
    if not text:
        return ""
    forward = _FORWARD_MARKER.search(text)
    if forward:
        note = _separated(text[: forward.start()])
        return (note + "\n\n" + text[forward.start() :].strip()).strip()
    return _separated(text)


def _separated(text: str) -> str:
    head = _WRAPPED_ATTRIBUTION.sub(r"\1 \2", text[:_SEPARATE_AT_MOST])
    reply = ReplyMessage(text=head, languages=list(REPLY_LANGUAGES), keep_hyphen_lists=True).read()
    if not reply.replies:
        return ""
    first = reply.replies[0]
    if first.headers:  # the text began with history: nothing new
        return ""
    body = _unsigned(first.content, reply.SIGNATURE_REGEX)
    lines = body.rstrip().split("\n")
    while lines and (lines[-1].startswith(">") or not lines[-1].strip()):  # quoted lines under the reply
        lines.pop()
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _unsigned(body: str, signature: re.Pattern[str]) -> str:
    """The body without its signature: the first block the library takes for one that really is one."""
    position = 0
    while found := signature.search(body, position):
        if _is_signature(found.group()):
            return body[: found.start()]
        following = body.find("\n", found.start() + len(found.group()) - len(found.group().lstrip()) + 1)
        if following < 0:
            break
        position = following
    return body


def _is_signature(found: str) -> bool:
    """A sign-off or signature block, not a sentence that happens to start with "Thanks,": its first line
    is a separator, a "Sent from my …" line, or a short closing formula, and the block is short."""
    lines = [line.strip() for line in found.strip().split("\n") if line.strip()]
    if not lines or len(lines) > 12:
        return False
    first = lines[0].lstrip("> ")
    return bool(_SIGNATURE_OPENERS.match(first)) or len(first.split()) <= 4
