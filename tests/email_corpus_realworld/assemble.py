"""How this corpus was assembled, labeled and named; run again to rebuild it from the same sources.

    python tests/email_corpus_realworld/assemble.py SOURCES_DIR

SOURCES_DIR holds one folder per source, named by its id in `SOURCES` below and laid out as the source
distributes it (an sdist unpacked, a repository checked out, CPython's `Lib/`). The script copies the selected
messages here as `NNN_<source>_<name>.eml` (numbered in source order, so a reply sorts after what it answers),
adds the messages made for this corpus (`constructed()`), labels every one from its headers (`label()`), and
writes `manifest.json` and the license texts under `LICENSES/`. SOURCES.md explains the choices.

Labels: `auto` (a bounce, an auto-reply, list or bulk mail, a machine report: it must open no ticket) or
`ticket`. The first rule of `label()` that matches decides, and the manifest records which one (`why`).
"""

from __future__ import annotations

import argparse
import email
import email.header
import email.parser
import hashlib
import json
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.utils import getaddresses
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAX_BYTES = 400_000  # larger files are left out: the corpus stays a few MB
ACCEPT = "accept"  # what the SMTP listener should answer every message (none is rightly refused)
NO_SENDER = "corpus-sender@example.net"  # envelope sender of a message with no usable ASCII address of its own


@dataclass(frozen=True)
class Source:
    id: str
    what: str  # the distribution and version or commit
    license: str  # SPDX id
    license_file: str  # inside the source
    globs: tuple[str, ...]


SOURCES = (
    Source(
        "cpython",
        "CPython 3.13.0 source, Lib/test/test_email/data",
        "PSF-2.0",
        "LICENSE.txt",
        ("test/test_email/data/msg_*.txt",),
    ),
    Source(
        "flufl.bounce",
        "flufl.bounce 6.0.0 sdist (PyPI), tests/data",
        "Apache-2.0",
        "LICENSE",
        ("tests/data/*.txt",),
    ),
    Source(
        "mail-parser",
        "mail-parser 4.8.0 sdist (PyPI), tests/mails",
        "Apache-2.0",
        "LICENSE.txt",
        ("tests/mails/*",),
    ),
    Source(
        "talon",
        "talon 1.4.4 sdist (PyPI), tests/fixtures",
        "Apache-2.0",
        "LICENSE",
        ("tests/fixtures/**/*.eml",),
    ),
    Source(
        "django-mailbox",
        "django-mailbox 4.10.1 sdist (PyPI), django_mailbox/tests/messages",
        "MIT",
        "LICENSE",
        ("django_mailbox/tests/messages/*.eml",),
    ),
    Source(
        "dkimpy",
        "dkimpy 1.1.8 sdist (PyPI), dkim/tests/data",
        "Zlib",
        "LICENSE",
        ("dkim/tests/data/*.msg", "dkim/tests/data/test*.message"),
    ),
    Source(
        "imap_tools",
        "github.com/ikvk/imap_tools at f2290be32cbf5f01e96a5f17e614116e7840bc91, tests/messages",
        "Apache-2.0",
        "LICENSE",
        ("tests/messages/**/*.eml",),
    ),
    Source(
        "flanker",
        "github.com/mailgun/flanker at c7f70738dbb39eda2861b03917b63ec9fa828f5d, tests/fixtures/messages",
        "Apache-2.0",
        "LICENSE",
        ("tests/fixtures/messages/**/*.eml", "tests/fixtures/messages/dkim/email.01"),
    ),
    Source(
        "parsedmarc",
        "github.com/domainaware/parsedmarc at 6358c364018af0815b59087eef99ff914bb6fa51, samples",
        "Apache-2.0",
        "LICENSE",
        ("samples/**/*.eml", "samples/aggregate/Report*"),
    ),
    Source(
        "sisimai",
        "github.com/sisimai/set-of-emails at 18e585c22288b83c1f6943949cb86b2623b362ce, maildir",
        "BSD-2-Clause",
        "LICENSE",
        ("maildir/*/*.eml",),
    ),
)
# Where imap_tools took most of its messages from: used for provenance only (the manifest's `upstream`)
MAIL_GEM = Source(
    "mail-gem",
    "github.com/mikel/mail (the Ruby mail gem) at d645d7b5b7d03218b0bc8971ef041c991a63f5f7, spec/fixtures/emails",
    "MIT",
    "MIT-LICENSE",
    ("spec/fixtures/emails/**/*.eml",),
)
CONSTRUCTED = Source("constructed", "made for this corpus by assemble.py (this repository)", "Apache-2.0", "", ())

# Left out on purpose, with the reason (the manifest's `skipped`)
EXCLUDED = {
    ("mail-parser", "tests/mails/mail_outlook_1"): "an Outlook .msg file (OLE compound document), not RFC 5322",
    ("mail-parser", "tests/mails/mail_test_1"): "carries a .zip from a malware campaign",
    ("mail-parser", "tests/mails/mail_test_11"): "carries a .zip from a malware campaign",
    ("mail-parser", "tests/mails/mail_test_4"): "carries a .zip from a malware campaign",
    ("mail-parser", "tests/mails/mail_test_15"): "carries a .zip from a malware campaign",
    ("mail-parser", "tests/mails/mail_test_10"): "carries a phishing PDF",
}


# Labels decided by reading the message, where the header rules alone get it wrong (the manifest says so)
OVERRIDES = {
    ("flanker", "tests/fixtures/messages/long-links.eml"): (
        "ticket",
        "message",
        "manual: a person's message from a postmaster@ address (no failure in its subject or body)",
    ),
    ("imap_tools", "tests/messages/error_emails/empty_in_reply_to.eml"): (
        "ticket",
        "message",
        "manual: a person's message through a group address; its List-Id alone does not make it list mail"
        " (a support@ group adds one to customers' mail)",
    ),
    ("sisimai", "maildir/bsd/lhost-kddi-01.eml"): (
        "auto",
        "bounce",
        "manual: Subject メールエラー通知 ('mail error notice') from no-reply@, the body a mailbox-full report",
    ),
}


def sisimai_selected(paths: list[str]) -> set[str]:
    """Of the 800 sisimai files: one per sending-MTA family (`lhost-exim`, `rhost-google`, `arf`, ...), from
    maildir/bsd (LF) where it has one, else maildir/mac (CR line endings) or maildir/dos (CRLF); every RFC 3834
    auto-reply; the 'is not a bounce' ones; three of the split-mbox ones (maildir/err)."""
    chosen: set[str] = set()
    families: dict[str, str] = {}
    for folder in ("bsd", "mac", "dos"):
        for path in sorted(p for p in paths if p.startswith(f"maildir/{folder}/")):
            family = re.sub(r"-\d+\.eml$", "", path.rsplit("/", 1)[1])
            families.setdefault(family, path)
            if family == "rfc3834" and folder == "bsd":
                chosen.add(path)
    chosen |= set(families.values())
    chosen |= {p for p in paths if p.startswith("maildir/not/")}
    chosen |= set(sorted(p for p in paths if p.startswith("maildir/err/"))[:3])
    return chosen


# ------------------------------------------------------------------------------ labels


_BOUNCE_SUBJECT = re.compile(
    r"(?i)\b(undeliverable|undelivered|returned mail|return(ed)? to sender|failure notice|failed mail|"
    r"delivery (status )?notification|delivery (status )?report|delivery failure|delivery problem|"
    r"mail delivery (failed|failure|problem|warning)|non[- ]?delivery|nondeliverable|could not be delivered|"
    r"(mail|message) not delivered|delayed mail|message delayed|warning: message .* delayed|"
    r"permanent delivery failure|mail system error|non remis|non recapitabile|unzustellbar|"
    r"delivery status|mail delivery|rejected mail|bounce)"
)
_AUTO_SUBJECT = re.compile(
    r"(?i)(out of (the )?office|automatic reply|auto[- ]?reply|autoreply|auto[- ]?respon|abwesenheit|"
    r"absence|vacation|away until|r[ée]ponse automatique|respuesta autom[aá]tica)"
)
# RFC 7489 7.2.1.1 (aggregate) and the failure reports' usual subjects
_REPORT_SUBJECT = re.compile(r"(?i)^\s*report domain:|dmarc (failure|forensic) report")
_SYSTEM_SENDER = re.compile(r"(?i)(^|[<\s\"])(mailer[-_ ]?daemon|post_?master|mdaemon)\b|<>")


def _headers(raw: bytes) -> Message:
    """The header block only: labels and envelopes never depend on the body (which may not even parse)."""
    return email.parser.BytesHeaderParser(policy=policy.compat32).parsebytes(raw)


def _parsed(raw: bytes) -> Message | None:
    """The whole message, or None where the stdlib cannot parse it (RecursionError at deep nesting)."""
    try:
        return email.message_from_bytes(raw, policy=policy.compat32)
    except RecursionError:
        return None


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # a header the stdlib cannot read is treated as missing
        return ""
    return re.sub(r"\s+", " ", str(value)).strip() if value is not None else ""


def label(raw: bytes) -> tuple[str, str, str]:
    """(expected, kind, why) from the headers, in this order: the MIME report types, RFC 3834's
    Auto-Submitted, the X-Autoreply family, a null Return-Path, Precedence, list headers, a mail-system
    sender, then subject patterns of bounces, auto-replies and DMARC reports. Anything else: a ticket."""
    message = _headers(raw)
    content_type = _header(message, "Content-Type").lower()
    report = re.search(r"report-type\s*=\s*\"?([\w-]+)", content_type)
    if content_type.startswith("multipart/report"):
        kind = report.group(1) if report else ""
        if kind == "delivery-status":
            return "auto", "bounce", "multipart/report; report-type=delivery-status (an RFC 3464 DSN)"
        if kind == "disposition-notification":
            return "auto", "read-receipt", "multipart/report; report-type=disposition-notification (RFC 8098 MDN)"
        if kind == "feedback-report":
            return "auto", "report", "multipart/report; report-type=feedback-report (RFC 5965 ARF)"
        why = f"multipart/report; report-type={kind or '(none)'}"
        return "auto", "bounce" if _bounce_like(message) else "report", why
    auto_submitted = _header(message, "Auto-Submitted").split(";")[0].strip().lower()
    subject = _header(message, "Subject")
    decoded = _decoded(subject)
    sender = _header(message, "From")
    bounce_like = _bounce_like(message)
    if auto_submitted and auto_submitted != "no":
        kind = "bounce" if bounce_like else "auto-reply"
        return "auto", kind, f"Auto-Submitted: {auto_submitted} (RFC 3834)"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autogenerated"):
        if _header(message, name):
            return "auto", "bounce" if bounce_like else "auto-reply", f"{name} header"
    if _header(message, "Return-Path").replace(" ", "") == "<>":
        return "auto", "bounce" if bounce_like else "auto-reply", "Return-Path: <> (null reverse-path)"
    precedence = _header(message, "Precedence").lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        kind = {"list": "list", "auto_reply": "auto-reply"}.get(precedence, "bulk")
        kind = "bounce" if bounce_like else kind
        return "auto", kind, f"Precedence: {precedence}"
    for name in ("List-Id", "List-Post", "List-Subscribe", "List-Unsubscribe", "Mailing-List", "X-Mailing-List"):
        if _header(message, name):
            return "auto", "list", f"{name} header (list or bulk mail)"
    if _SYSTEM_SENDER.search(sender):
        return "auto", "bounce", "From a mail system (MAILER-DAEMON, postmaster, or <>)"
    if _BOUNCE_SUBJECT.search(decoded):
        return "auto", "bounce", "Subject of a delivery failure"
    if _AUTO_SUBJECT.search(decoded):
        return "auto", "auto-reply", "Subject of an automatic reply"
    if _REPORT_SUBJECT.search(decoded):
        return "auto", "report", "Subject of a DMARC report (RFC 7489)"
    return "ticket", "message", "no automatic-mail signal in the headers"


def _bounce_like(message: Message) -> bool:
    return bool(_SYSTEM_SENDER.search(_header(message, "From"))) or bool(
        _BOUNCE_SUBJECT.search(_decoded(_header(message, "Subject")))
    )


def _decoded(value: str) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except Exception:
        return value


def envelope_sender(raw: bytes, expected: str, kind: str) -> str:
    """The MAIL FROM to replay it with: the Return-Path it was delivered with (its original envelope sender)
    when it is plain ASCII; else the null reverse-path for bounces and auto-replies (RFC 5321 4.5.5, RFC 3834
    3.3); else the From address when it is plain ASCII; else NO_SENDER."""
    message = _headers(raw)
    return_path = _header(message, "Return-Path")
    found = re.fullmatch(r"<?([!-~]*?)>?", return_path.replace(" ", "")) if return_path else None
    if found and (found.group(1) == "" or _plain_address(found.group(1))):
        return found.group(1)
    if expected == "auto" and kind in ("bounce", "auto-reply", "report", "read-receipt"):
        return ""
    for _, address in getaddresses([_header(message, "From")]):
        if _plain_address(address):
            return address
    return NO_SENDER


def _plain_address(address: str) -> bool:
    return bool(re.fullmatch(r"[!-~]+@[!-~]+", address)) and "<" not in address and ">" not in address


# ------------------------------------------------------------------------------ traits


def traits(raw: bytes) -> list[str]:
    """What makes a message unusual, for the corpus composition (none of it decides the label)."""
    found = []
    message = _headers(raw)
    sender = _header(message, "From")
    addresses = [a for _, a in getaddresses([sender]) if a]
    if not raw.strip():
        found.append("empty")
    elif not message.keys():
        found.append("no-headers")
    if not sender:
        found.append("no-from")
    elif not addresses or not any("@" in a for a in addresses):
        found.append("from-without-address")
    for address in addresses:
        domain = address.rsplit("@", 1)[-1].strip("[]>") if "@" in address else ""
        if domain and "." not in domain:
            found.append("sender-domain-without-dot")
        if domain.lower().startswith("localhost"):
            found.append("sender-localhost")
        if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", domain):
            found.append("sender-ip-literal")
        if "xn--" in domain.lower() or not domain.isascii():
            found.append("sender-idn")
        if address.startswith('"'):
            found.append("sender-quoted-local-part")
    if re.search(r":[^@<>]*;", sender) and "=?" not in sender:
        found.append("sender-group")
    if not _header(message, "Message-ID"):
        found.append("no-message-id")
    if any(not line.isascii() for line in raw.split(b"\n\n", 1)[0].split(b"\n")):
        found.append("8bit-headers")
    lines = re.split(rb"\r\n|\r|\n", raw)
    if max((len(line) for line in lines), default=0) > 998:
        found.append("line-over-998")
    if b"\r\n" in raw:
        found.append("crlf")
    elif b"\r" in raw:
        found.append("cr-line-endings")
    whole = _parsed(raw)
    if whole is None:
        found += ["deep-nesting", "stdlib-recursion-error"]
    else:
        parts, depth = _shape(whole)
        if parts > 100:
            found.append("many-parts")
        if depth > 8:
            found.append("deep-nesting")
        if any(part.defects for part in whole.walk()):
            found.append("mime-defects")
    if len(raw) > 100_000:
        found.append("large")
    return list(dict.fromkeys(found))


def _shape(message: Message) -> tuple[int, int]:
    """(leaf parts, nesting depth), without recursion (a deeply nested message must not break the script)."""
    leaves, deepest = 0, 0
    stack = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        deepest = max(deepest, depth)
        payload = part.get_payload()
        if part.is_multipart() and isinstance(payload, list):
            stack.extend((child, depth + 1) for child in payload if isinstance(child, Message))
        else:
            leaves += 1
    return leaves, deepest


# ------------------------------------------------------------------------------ constructed messages


def constructed() -> Iterator[tuple[str, bytes, str]]:
    """(name, bytes, why) of messages no public fixture had: unusual senders a support inbox does get, and
    the shapes that limits exist for (thousands of parts, deep nesting, very long lines)."""

    def plain(sender: str, subject: str, body: str, name: str, extra: str = "") -> bytes:
        headers = (
            f"{sender}To: Support <support@example.com>\r\nSubject: {subject}\r\n"
            f"Date: Tue, 01 Apr 2025 09:30:00 +0000\r\nMessage-ID: <{name}@corpus.intake.example>\r\n{extra}"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        )
        return headers.encode() + body.encode()

    ask = "Hello,\r\n\r\nmy order 4711 has not arrived yet. Could you check where it is?\r\n\r\nThanks\r\n"
    yield (
        "sender_domain_without_dot",
        plain("From: Kim Lee <kim@intranet>\r\n", "Order 4711 missing", ask, "nodot"),
        "a sender on an internal host name: a domain without a dot",
    )
    yield (
        "sender_localhost",
        plain("From: Dana <dana@localhost>\r\n", "Where is my parcel?", ask, "localhost"),
        "a sender at localhost (a misconfigured client or a local script)",
    )
    yield (
        "sender_ip_literal",
        plain("From: Ops <ops@[192.0.2.10]>\r\n", "Invoice question", ask, "ipliteral"),
        "an address-literal domain (RFC 5321 4.1.3)",
    )
    yield (
        "sender_idn_utf8",
        plain("From: Jürgen Groß <jürgen@bücher.example>\r\n", "Bestellung 4711", ask, "idn-utf8"),
        "an internationalized address in UTF-8 headers (RFC 6532)",
    )
    yield (
        "sender_idn_punycode",
        plain("From: Jurgen <jurgen@xn--bcher-kva.example>\r\n", "Bestellung 4712", ask, "idn-ace"),
        "an IDN domain in its ASCII (punycode) form",
    )
    yield (
        "sender_quoted_local_part",
        plain('From: "John Smith"@example.com\r\n', "Refund request", ask, "quoted"),
        "a quoted local part with a space",
    )
    yield (
        "sender_quoted_local_part_dots",
        plain('From: Ann <"ann..b"@example.org>\r\n', "Refund request again", ask, "quoted-dots"),
        "a quoted local part with consecutive dots",
    )
    yield (
        "sender_group_syntax",
        plain("From: Customers:;\r\n", "Group sender", ask, "group", "Sender: web@shop.example\r\n"),
        "a group with no address as From (RFC 6854), the sender in Sender:",
    )
    yield (
        "sender_missing",
        plain("", "No sender at all", ask, "nofrom"),
        "no From header and no Sender",
    )
    yield (
        "sender_display_name_only",
        plain("From: Customer Service\r\n", "Name but no address", ask, "nameonly"),
        "a From with a display name and no address",
    )
    parts = ["--p\r\nContent-Type: text/plain\r\n\r\nHere are the 5,000 log lines, one a file.\r\n"]
    parts += [f"--p\r\nContent-Disposition: attachment; filename={n}.log\r\n\r\n{n}\r\n" for n in range(5000)]
    yield (
        "parts_5000",
        plain("From: Logger <logs@example.org>\r\n", "5000 attachments", "", "parts5000").replace(
            b"Content-Type: text/plain; charset=utf-8", b'Content-Type: multipart/mixed; boundary="p"'
        )
        + "".join(parts).encode()
        + b"--p--\r\n",
        "5,001 MIME parts (5,000 attachments) in one multipart/mixed",
    )
    for depth in (50, 1000):
        body = "".join(f'--b{n}\r\nContent-Type: multipart/mixed; boundary="b{n + 1}"\r\n\r\n' for n in range(depth))
        body += f"--b{depth}\r\nContent-Type: text/plain\r\n\r\nThe innermost part, {depth} levels down.\r\n"
        body += "".join(f"--b{n}--\r\n" for n in range(depth, -1, -1))
        yield (
            f"nesting_{depth}",
            plain("From: Nest <nest@example.org>\r\n", f"{depth} levels of multipart", "", f"nest{depth}").replace(
                b"Content-Type: text/plain; charset=utf-8", b'Content-Type: multipart/mixed; boundary="b0"'
            )
            + body.encode(),
            f"multipart/mixed nested {depth} levels deep",
        )
    yield (
        "long_line_body",
        plain("From: Pat <pat@example.org>\r\n", "One long line", "word " * 40_000 + "\r\n", "longbody"),
        "a text body that is one 200,000-character line (no line breaks: what some web forms send)",
    )
    yield (
        "long_line_header",
        plain(
            "From: Pat <pat@example.org>\r\n",
            "Long references",
            ask,
            "longheader",
            "References: " + " ".join(f"<ref{n}@example.org>" for n in range(300)).replace(" ", "") + "\r\n",
        ),
        "a References header of 5,700 characters on one line, no folding",
    )


# ------------------------------------------------------------------------------ assembly


def _without_mbox_separator(raw: bytes) -> tuple[bytes, str | None]:
    """A leading mbox `From ` line (RFC 4155) is the mailbox's, not the message's: removed, and said so."""
    if raw.startswith(b"From ") and not raw.startswith(b"From: "):
        return raw.split(b"\n", 1)[1] if b"\n" in raw else b"", "leading mbox 'From ' separator line removed"
    return raw, None


def _message_id(raw: bytes) -> str | None:
    value = _header(_headers(raw), "Message-ID")
    return value.strip() or None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", type=Path, help="a folder with one sub-folder per source id")
    args = parser.parse_args(argv)
    for old in HERE.glob("*.eml"):
        old.unlink()
    licenses = HERE / "LICENSES"
    shutil.rmtree(licenses, ignore_errors=True)
    licenses.mkdir()

    entries: list[dict[str, object]] = []
    skipped: list[dict[str, str]] = []
    seen_bytes: dict[str, str] = {}
    seen_ids: dict[str, str] = {}

    def take(source: Source, origin: str, raw: bytes, note: str | None = None, upstream: str | None = None) -> None:
        raw, modified = _without_mbox_separator(raw)
        where = f"{source.id}:{origin}"
        digest = hashlib.sha256(raw).hexdigest()
        if len(raw) > MAX_BYTES:
            skipped.append({"origin": where, "why": f"{len(raw)} bytes (over {MAX_BYTES})"})
            return
        if digest in seen_bytes:
            skipped.append({"origin": where, "why": f"the same bytes as {seen_bytes[digest]}"})
            return
        message_id = _message_id(raw)
        if message_id and message_id in seen_ids:
            skipped.append({"origin": where, "why": f"the same Message-ID as {seen_ids[message_id]}"})
            return
        seen_bytes[digest] = where
        if message_id:
            seen_ids[message_id] = where
        expected, kind, why = OVERRIDES.get((source.id, origin)) or label(raw)
        stem = _slug(Path(origin).stem if source is not CONSTRUCTED else origin)
        name = f"{len(entries) + 1:03d}_{_slug(source.id)}_{stem}.eml"
        (HERE / name).write_bytes(raw)
        entry: dict[str, object] = {
            "file": name,
            "source": source.id,
            "origin": origin,
            "license": source.license,
            "sha256": digest,
            "bytes": len(raw),
            "expected": expected,
            "kind": kind,
            "why": why,
            "envelope_from": envelope_sender(raw, expected, kind),
            "smtp": ACCEPT,
            "traits": traits(raw),
        }
        if upstream:
            entry["upstream"] = upstream
        if modified:
            entry["modified"] = modified
        if note:
            entry["note"] = note
        entries.append(entry)

    gem_root = args.sources / MAIL_GEM.id
    shutil.copyfile(gem_root / MAIL_GEM.license_file, licenses / f"{MAIL_GEM.id}.txt")
    gem = {p.name: p for pattern in MAIL_GEM.globs for p in gem_root.glob(pattern)}

    def upstream(source: Source, origin: str, raw: bytes) -> str | None:
        found = gem.get(Path(origin).name) if source.id == "imap_tools" else None
        if found is None:
            return None
        same = "identical" if found.read_bytes() == raw else "edited by imap_tools"
        return f"{MAIL_GEM.id} ({MAIL_GEM.license}): {found.relative_to(gem_root)}, {same}"

    for source in SOURCES:
        root = args.sources / source.id
        shutil.copyfile(root / source.license_file, licenses / f"{source.id}.txt")
        found = sorted({p for pattern in source.globs for p in root.glob(pattern) if p.is_file()})
        origins = [str(p.relative_to(root)) for p in found]
        if source.id == "sisimai":
            keep = sisimai_selected(origins)
            origins = [o for o in origins if o in keep]
        for origin in origins:
            if (source.id, origin) in EXCLUDED:
                skipped.append({"origin": f"{source.id}:{origin}", "why": EXCLUDED[(source.id, origin)]})
                continue
            raw = (root / origin).read_bytes()
            take(source, origin, raw, upstream=upstream(source, origin, raw))
    for name, raw, why in constructed():
        take(CONSTRUCTED, name, raw, why)

    manifest = {
        "about": "tests/email_corpus_realworld: see SOURCES.md. expected: ticket | auto (must open no ticket).",
        "messages": entries,
        "skipped": skipped,
    }
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(entries)} messages, {len(skipped)} skipped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
