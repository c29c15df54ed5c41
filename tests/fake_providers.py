"""Twilio's Messages API and Meta's WhatsApp Cloud API send endpoint, as a real HTTP server on 127.0.0.1.

What it checks is what the providers document:
- Twilio, `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`: HTTP basic auth with the account SID and auth
  token (else 401, error 20003), a form body (`application/x-www-form-urlencoded`), `To` and `From` (E.164, or both
  `whatsapp:`-prefixed), a `Body` or a `MediaUrl`, an absolute `StatusCallback`. Answers 201 with the Message
  resource (`sid` "SM" + 32 hex, `status` "queued"), or 400 with Twilio's error document (`code`, `message`,
  `more_info`, `status`). Each `MediaUrl` is fetched, as Twilio fetches it.
- WhatsApp Cloud API, `POST /{version}/{phone_number_id}/messages`: `Authorization: Bearer <access token>` (else 401,
  Graph error 190), a JSON body with `messaging_product: "whatsapp"`, `to`, and a `type` whose object is present
  (`text.body`; `template.name` and `template.language.code`; a media `link`, fetched). Answers 200 with
  `{"messaging_product", "contacts": [{"input", "wa_id"}], "messages": [{"id": "wamid..."}]}`, or 400 with a Graph
  `error` object.
- Messenger Platform Send API (Messenger and Instagram), `POST /{version}/{page id, or me}/messages`:
  `Authorization: Bearer <the Page's or the Instagram account's token>` (else 401, Graph error 190; the token says
  which channel it is), a JSON body with `recipient.id`, a `messaging_type` (required on Messenger: `RESPONSE`,
  `UPDATE` or `MESSAGE_TAG` with a known `tag`; Instagram takes only the `HUMAN_AGENT` tag), and a `message` with a
  `text` (at most 2,000 characters on Messenger, 1,000 bytes on Instagram) or an `attachment` (`image`, `video`,
  `audio`, `file`) whose `payload.url` is fetched. Answers 200 with `{"recipient_id", "message_id"}`, or a Graph
  `error` object (code 100 for a bad parameter).

- Twilio's recordings, `GET /2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}.mp3` with the same basic
  auth: the MP3 of `recordings[sid]` (404 for another, 401 without the credentials).

Every request is recorded (`requests`), as received and with what it fetched; `fail(n, status)` makes the next `n`
sends answer `status` (a provider outage), `refuse(code)` the next one a permanent error.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "fake-twilio-auth-token"
ACCESS_TOKEN = "fake-graph-access-token"
PAGE_TOKEN = "fake-messenger-page-token"
INSTAGRAM_TOKEN = "fake-instagram-access-token"
_MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")
_MESSENGER_TAGS = (
    "HUMAN_AGENT",
    "ACCOUNT_UPDATE",
    "CONFIRMED_EVENT_UPDATE",
    "POST_PURCHASE_UPDATE",
    "CUSTOMER_FEEDBACK",
)
_ATTACHMENT_TYPES = ("image", "video", "audio", "file")
GRAPH_VERSION = "v21.0"
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_TWILIO_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-f]{32})/Messages\.json$")
_RECORDING_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-f]{32})/Recordings/(?P<sid>RE[0-9a-f]{32})\.mp3$"
)
_PROFILE_PATH = re.compile(rf"^/{GRAPH_VERSION}/(?P<user>[0-9]+)\?fields=(?P<fields>[a-z_,]+)$")
_GRAPH_PATH = re.compile(rf"^/{GRAPH_VERSION}/(?P<number>[0-9]+|me)/messages$")  # me: the Page a token speaks for


@dataclass
class Received:
    provider: str  # twilio | whatsapp | messenger | instagram
    path: str
    headers: dict[str, str]
    form: list[tuple[str, str]] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)
    fetched: list[bytes] = field(default_factory=list)  # the media its links served
    status: int = 0  # what it was answered
    answer: dict[str, Any] = field(default_factory=dict)

    def value(self, name: str) -> str | None:
        return next((v for k, v in self.form if k == name), None)

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.form if k == name]


@dataclass
class FakeProviders:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    access_token: str = ACCESS_TOKEN
    page_token: str = PAGE_TOKEN
    instagram_token: str = INSTAGRAM_TOKEN
    page_tokens: dict[str, str] = field(default_factory=dict)  # a Page id -> its own token, the only one it takes
    requests: list[Received] = field(default_factory=list)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id -> what the User Profile API answers
    recordings: dict[str, bytes] = field(default_factory=dict)  # a Twilio recording's SID -> its MP3
    next_sids: list[str] = field(default_factory=list)  # the Message SIDs Twilio's next sends answer with, in order
    _failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def graph_url(self) -> str:
        return f"{self.url}/{GRAPH_VERSION}"

    def environment(self) -> dict[str, str]:
        """What `intake serve` (or a Lambda's environment) needs to send through these fakes."""
        return {
            "INTAKE_TWILIO_API_URL": self.url,
            "INTAKE_GRAPH_API_URL": self.graph_url,
            "INTAKE_TWILIO_ACCOUNT_SID": self.account_sid,
            "INTAKE_TWILIO_AUTH_TOKEN": self.auth_token,
            "INTAKE_WHATSAPP_ACCESS_TOKEN": self.access_token,
            "INTAKE_MESSENGER_PAGE_TOKEN": self.page_token,
            "INTAKE_INSTAGRAM_ACCESS_TOKEN": self.instagram_token,
            **{f"INTAKE_MESSENGER_PAGE_TOKEN_{page}": token for page, token in self.page_tokens.items()},
        }

    def fail(self, times: int, status: int = 500) -> None:
        with self._lock:
            self._failures += [(status, {"code": 20500, "message": "Internal Server Error", "status": status})] * times

    def refuse(self, code: int, message: str) -> None:
        with self._lock:
            self._failures.append((400, {"code": code, "message": message, "status": 400}))

    def received(self, provider: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.provider == provider]

    def start(self) -> FakeProviders:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                if (match := _TWILIO_PATH.match(self.path)) is not None:
                    status, answer, seen = fake._twilio(match["account"], headers, body)
                elif (match := _GRAPH_PATH.match(self.path)) is not None and _send_api(body):
                    status, answer, seen = fake._send_api(match["number"], headers, body)
                elif match is not None:
                    status, answer, seen = fake._graph(match["number"], headers, body)
                else:
                    status, answer, seen = 404, {"message": "not found"}, Received("unknown", self.path, headers)
                seen.path, seen.status, seen.answer = self.path, status, answer
                with fake._lock:
                    fake.requests.append(seen)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                """The User Profile API: `GET /{version}/{user id}?fields=...` with a Page (or Instagram) token;
                Twilio's recordings."""
                headers = {k.lower(): v for k, v in self.headers.items()}
                if (recording := _RECORDING_PATH.match(self.path)) is not None:
                    status, content = fake._recording(recording["account"], recording["sid"], headers)
                    with fake._lock:
                        fake.requests.append(Received("recording", self.path, headers, status=status))
                    self.send_response(status)
                    self.send_header("Content-Type", "audio/mpeg" if status == 200 else "application/json")
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)
                    return
                match = _PROFILE_PATH.match(self.path)
                tokens = {f"Bearer {t}" for t in (fake.page_token, fake.instagram_token, *fake.page_tokens.values())}
                if match is None or match["user"] not in fake.profiles:
                    status, answer = 404, _graph_error(100, "Unsupported get request")
                elif headers.get("authorization") not in tokens:
                    status, answer = 401, _graph_error(190, "Invalid OAuth access token")
                else:
                    fields = match["fields"].split(",")
                    status, answer = 200, {k: v for k, v in fake.profiles[match["user"]].items() if k in fields}
                with fake._lock:
                    fake.requests.append(Received("profile", self.path, headers, status=status, answer=answer))
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="fake-providers", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ---------------------------------------------------------------------------------------------- Twilio

    def _recording(self, account: str, sid: str, headers: dict[str, str]) -> tuple[int, bytes]:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if account != self.account_sid or headers.get("authorization") != expected:
            return 401, json.dumps(_twilio_error(20003, "Authenticate", 401)).encode()
        if sid not in self.recordings:
            return 404, json.dumps(_twilio_error(20404, "The requested resource was not found", 404)).encode()
        return 200, self.recordings[sid]

    def _twilio(self, account: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any], Received]:
        form = parse_qsl(body.decode(), keep_blank_values=True)
        seen = Received("twilio", "", headers, form=form)
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if account != self.account_sid or headers.get("authorization") != expected:
            return 401, _twilio_error(20003, "Authenticate", 401), seen
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return 400, _twilio_error(20001, "Content-Type must be application/x-www-form-urlencoded", 400), seen
        to, sender = seen.value("To") or "", seen.value("From") or ""
        if not to:
            return 400, _twilio_error(21604, "A 'To' phone number is required.", 400), seen
        if not sender:
            return 400, _twilio_error(21603, "A 'From' phone number is required.", 400), seen
        whatsapp = to.startswith("whatsapp:")
        if whatsapp != sender.startswith("whatsapp:"):
            return 400, _twilio_error(21910, "Invalid From and To pair: both must be whatsapp:", 400), seen
        for number, code in ((to, 21211), (sender, 21212)):
            if not _E164.match(number.removeprefix("whatsapp:")):
                return 400, _twilio_error(code, f"The number {number} is not a valid phone number.", 400), seen
        if not seen.value("Body") and not seen.values("MediaUrl"):
            return 400, _twilio_error(21602, "Message body is required.", 400), seen
        callback = seen.value("StatusCallback")
        if callback is not None and not callback.startswith(("http://", "https://")):
            return 400, _twilio_error(21609, "Invalid StatusCallback URL", 400), seen
        for link in seen.values("MediaUrl"):
            seen.fetched.append(_fetch(link))
        if (failure := self._next_failure()) is not None:
            return failure[0], failure[1], seen
        sid = self.next_sids.pop(0) if self.next_sids else "SM" + secrets.token_hex(16)
        answer = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": sender,
            "body": seen.value("Body") or "",
            "status": "queued",
            "num_media": str(len(seen.values("MediaUrl"))),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        return 201, answer, seen

    # ------------------------------------------------------------------------------------- WhatsApp Cloud

    def _graph(self, number: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any], Received]:
        seen = Received("whatsapp", "", headers)
        if headers.get("authorization") != f"Bearer {self.access_token}":
            error = {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}
            return 401, {"error": error}, seen
        try:
            document = json.loads(body)
        except ValueError:
            return 400, _graph_error(100, "(#100) The request body is not JSON"), seen
        seen.document = document if isinstance(document, dict) else {}
        doc = seen.document
        if doc.get("messaging_product") != "whatsapp":
            return 400, _graph_error(100, "(#100) The parameter messaging_product is required."), seen
        if not isinstance(doc.get("to"), str) or not doc["to"]:
            return 400, _graph_error(100, "(#100) The parameter to is required."), seen
        kind = doc.get("type", "text")
        typed = doc.get(kind)
        if not isinstance(typed, dict):
            return 400, _graph_error(100, f"(#100) The parameter {kind} is required."), seen
        if kind == "text" and not typed.get("body"):
            return 400, _graph_error(100, "(#100) The parameter text['body'] is required."), seen
        if kind == "template" and (not typed.get("name") or not (typed.get("language") or {}).get("code")):
            return 400, _graph_error(100, "(#100) The parameter template['name'] or ['language'] is missing."), seen
        if kind in ("image", "audio", "video", "document", "sticker"):
            if not typed.get("link") and not typed.get("id"):
                return 400, _graph_error(100, f"(#100) The parameter {kind}['link'] or ['id'] is required."), seen
            if typed.get("link"):
                seen.fetched.append(_fetch(typed["link"]))
        if (failure := self._next_failure()) is not None:
            status, twilio_style = failure
            return status, _graph_error(131000 if status >= 500 else 100, str(twilio_style.get("message"))), seen
        wamid = "wamid." + base64.b64encode(secrets.token_bytes(24)).decode()
        answer = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": doc["to"], "wa_id": doc["to"].lstrip("+")}],
            "messages": [{"id": wamid}],
        }
        return 200, answer, seen

    # ------------------------------------------------------------------------- Messenger Platform Send API

    def _send_api(self, account: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any], Received]:
        channels = {f"Bearer {self.page_token}": "messenger", f"Bearer {self.instagram_token}": "instagram"}
        if account in self.page_tokens:  # a Page with a token of its own takes no other (nor gives it to others)
            channels = {f"Bearer {self.page_tokens[account]}": "messenger"}
        provider = channels.get(headers.get("authorization", ""))
        seen = Received(provider or "messenger", "", headers, document=json.loads(body))
        if provider is None:
            error = {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}
            return 401, {"error": error}, seen
        doc = seen.document
        recipient = doc.get("recipient")
        if not isinstance(recipient, dict) or not isinstance(recipient.get("id"), str) or not recipient["id"]:
            return 400, _graph_error(100, "(#100) The parameter recipient is required"), seen
        kind, tag = doc.get("messaging_type"), doc.get("tag")
        if provider == "messenger" and kind not in _MESSAGING_TYPES:
            return 400, _graph_error(100, "(#100) The parameter messaging_type is required"), seen
        tags = _MESSENGER_TAGS if provider == "messenger" else ("HUMAN_AGENT",)
        if (kind == "MESSAGE_TAG") != (tag is not None) or (tag is not None and tag not in tags):
            return 400, _graph_error(100, "(#100) Param tag must be one of " + ", ".join(tags)), seen
        message = doc.get("message")
        if not isinstance(message, dict) or ("text" in message) == ("attachment" in message):
            return 400, _graph_error(100, "(#100) Must send either message[text] or message[attachment]"), seen
        if "text" in message:
            text = message["text"]
            too_long = len(text) > 2000 if provider == "messenger" else len(str(text).encode()) > 1000
            if not isinstance(text, str) or not text or too_long:
                return 400, _graph_error(100, "(#100) Length of param message[text] is out of range"), seen
        else:
            attachment = message["attachment"]
            payload = attachment.get("payload") if isinstance(attachment, dict) else None
            if attachment.get("type") not in _ATTACHMENT_TYPES or not isinstance(payload, dict):
                return 400, _graph_error(100, "(#100) Invalid attachment type or payload"), seen
            if not payload.get("url"):
                return (
                    400,
                    _graph_error(100, "(#100) The parameter payload[url] is required"),
                    seen,
                )
            seen.fetched.append(_fetch(payload["url"]))
        if (failure := self._next_failure()) is not None:
            status, twilio_style = failure
            code = 2 if status >= 500 else int(twilio_style.get("code") or 100)
            return status, _graph_error(code, str(twilio_style.get("message"))), seen
        mid = "m_" + secrets.token_urlsafe(48) if provider == "messenger" else "aWdf" + secrets.token_urlsafe(96)
        return 200, {"recipient_id": recipient["id"], "message_id": mid}, seen

    def _next_failure(self) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None


def _send_api(body: bytes) -> bool:
    """A Graph `.../messages` call that is the Messenger Platform's Send API (a `recipient`), not WhatsApp's."""
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return isinstance(document, dict) and "recipient" in document and "messaging_product" not in document


def _twilio_error(code: int, message: str, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _graph_error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Afake"}}


def _fetch(link: str) -> bytes:
    with urllib.request.urlopen(link, timeout=10) as response:
        content: bytes = response.read()
        return content
