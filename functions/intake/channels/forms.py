"""Web forms: signed posts from a site's backend, Typeform webhooks, and public HTML forms.

verify → parse → map. The receiver stores what `parse` returns and enqueues what `to_inbound` maps.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from pydantic import Field

from intake import identity
from intake.channels import contract, email, jsonbody, signatures
from intake.channels.contract import (
    Answer,
    Made,
    ReceiveContext,
    ReplayContext,
    ReplyContext,
    Route,
    Sample,
    SignContext,
    needs_secret,
    within,
)
from intake.channels.sending import ReplyUndeliverableError, ReplyWay
from intake.config import Name, Policy, Strict, default_model
from intake.errors import (
    FieldInvalidError,
    FormNotFoundError,
    OriginForbiddenError,
    PayloadTooLargeError,
    SignatureInvalidError,
    UnsupportedMediaTypeError,
    built_or_field_error,
)
from intake.mail_policy import DEFAULT
from intake.model import Attachment, Channel, InboundMessage, Priority, Sender, WebhookRequest

PROVIDER = "forms"
PATH = "/webhooks/forms/{form_id}"
MEDIA_TYPES = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"]


# ------------------------------------------------------------------------- its intake.yaml section


class FormAuthKind(StrEnum):
    SIGNED = "signed"
    TYPEFORM = "typeform"
    PUBLIC = "public"


class SignedAuth(Strict):
    kind: Literal[FormAuthKind.SIGNED]
    tolerance_s: int = Field(default=300, gt=0)


class TypeformAuth(Strict):
    kind: Literal[FormAuthKind.TYPEFORM]


class PublicAuth(Strict):
    kind: Literal[FormAuthKind.PUBLIC]
    origins: list[str] = Field(min_length=1)
    honeypot: str = "website"


FormAuth = Annotated[SignedAuth | TypeformAuth | PublicAuth, Field(discriminator="kind")]


class FieldMap(Strict):
    """Which of the form's fields (or Typeform field `ref`s) carries each of ours."""

    name: str | None = "name"
    email: str | None = "email"
    phone: str | None = "phone"
    subject: str | None = "subject"
    message: str = "message"
    priority: str | None = "priority"


class AttachmentLimits(Strict):
    max_files: int = Field(default=5, ge=0)
    max_file_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    types: list[str] = Field(default_factory=lambda: ["image/png", "image/jpeg", "application/pdf", "text/plain"])


class Form(Strict):
    team: Name
    auth: FormAuth
    fields: FieldMap = default_model(FieldMap)
    max_bytes: int = Field(default=1024 * 1024, gt=0)
    attachments: AttachmentLimits = default_model(AttachmentLimits)
    default_priority: Priority = Priority.NORMAL
    dedupe_window_s: int = Field(default=600, gt=0, description="identical submissions within it make one ticket")


def secret_name(form_id: str) -> str:
    """The secret's name: `INTAKE_<it>` locally, a key of the secrets JSON in AWS."""
    return f"FORM_{form_id.upper().replace('-', '_')}_SECRET"


@dataclass(frozen=True)
class UploadedFile:
    field: str
    filename: str
    content_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class Submission:
    """A form's fields by name (for Typeform: by field `ref`) and its uploaded files."""

    fields: dict[str, str]
    files: list[UploadedFile] = field(default_factory=list)
    submission_id: str | None = None  # the provider's own id, when it has one


def verify(form: Form, request: WebhookRequest, secret: str | None, now: float) -> None:
    auth = form.auth
    if isinstance(auth, PublicAuth):
        origin = request.header("origin")
        if origin not in auth.origins:
            raise OriginForbiddenError(origin)
        return
    if secret is None:
        raise SignatureInvalidError("no secret is configured for this form")
    if isinstance(auth, SignedAuth):
        signatures.verify_form(
            secret,
            request.header("x-intake-timestamp"),
            request.header("x-intake-signature"),
            request.body,
            now,
            auth.tolerance_s,
        )
    else:
        signatures.verify_typeform(secret, request.header("typeform-signature"), request.body)


def parse(form: Form, request: WebhookRequest) -> Submission:
    media_type = request.media_type
    if form.auth.kind == FormAuthKind.TYPEFORM:
        if media_type != "application/json":
            raise UnsupportedMediaTypeError("content type", media_type, ["application/json"])
        return _typeform(request.body)
    if media_type == "application/json":
        return Submission(_json_fields(request.body))
    if media_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise FieldInvalidError("(body)", "is not UTF-8") from None
        return Submission(_joined(pairs))
    if media_type == "multipart/form-data":
        return _multipart(form, request)
    raise UnsupportedMediaTypeError("content type", media_type, MEDIA_TYPES)


def is_spam(form: Form, submission: Submission) -> bool:
    """A public form's honeypot: a field people never see, so only bots fill it."""
    return isinstance(form.auth, PublicAuth) and bool(submission.fields.get(form.auth.honeypot, "").strip())


def content_id(form_id: str, submission: Submission) -> str:
    """What identifies this submission: the provider's id, else a hash of its content (double-clicks)."""
    if submission.submission_id:
        return submission.submission_id
    canonical = json.dumps(
        {"form": form_id, "fields": submission.fields, "files": sorted(f.sha256 for f in submission.files)},
        sort_keys=True,
        ensure_ascii=False,
    )
    return "sha256-" + hashlib.sha256(canonical.encode()).hexdigest()


def to_inbound(
    form_id: str,
    form: Form,
    submission: Submission,
    *,
    default_region: str,
    receipt_id: str,
    received_at: datetime,
    raw_archive_key: str,
    attachments: tuple[Attachment, ...],
) -> InboundMessage:
    mapping = form.fields
    values = submission.fields

    def value(name: str | None) -> str | None:
        found = values.get(name, "").strip() if name else ""
        return found or None

    text = value(mapping.message)
    if text is None and not attachments:
        raise FieldInvalidError(mapping.message, "is required")
    email = value(mapping.email)
    phone = value(mapping.phone)
    if email is None and phone is None:
        raise FieldInvalidError(mapping.email or mapping.phone or "email", "an email or a phone number is required")
    mapped = {name for name in mapping.model_dump().values() if name}
    custom = {k: v for k, v in values.items() if k not in mapped and not _is_honeypot(form, k)}
    provider_id = content_id(form_id, submission)
    # Our field → the form's, so that a value the model refuses is reported under the name the form uses
    theirs = {
        "name": mapping.name or "name",
        "email": mapping.email or "email",
        "phone": mapping.phone or "phone",
        "subject": mapping.subject or "subject",
        "text": mapping.message,
    }
    sender = built_or_field_error(
        lambda: Sender(
            name=value(mapping.name),
            email=_email(mapping.email, email),
            phone=_phone(mapping.phone, phone, default_region),
        ),
        theirs,
    )
    return built_or_field_error(
        lambda: InboundMessage(
            channel=Channel.FORM,
            provider=PROVIDER,
            provider_message_id=provider_id,
            receipt_id=receipt_id,
            received_at=received_at,
            team=form.team,
            sender=sender,
            subject=value(mapping.subject),
            text=text or "",
            priority=_priority(mapping.priority, value(mapping.priority), form.default_priority),
            attachments=attachments,
            raw_archive_key=raw_archive_key,
            thread_key=f"form#{form_id}#{provider_id}",
            dedupe_window_s=form.dedupe_window_s if submission.submission_id is None else 8 * 86400,
            metadata={"form_id": form_id, "fields": custom},
        ),
        theirs,
    )


def _is_honeypot(form: Form, name: str) -> bool:
    return isinstance(form.auth, PublicAuth) and name == form.auth.honeypot


def _email(name: str | None, raw: str | None) -> str | None:
    if raw is None:
        return None
    address = identity.email(raw)
    if address is None:
        raise FieldInvalidError(name or "email", "is not an email address")
    return address


def _phone(name: str | None, raw: str | None, region: str) -> str | None:
    """A number the customer typed, read in the form's region: it must be valid, while they can still correct it."""
    if raw is None:
        return None
    number = identity.phone(raw, region=region, valid=True)
    if number is None:
        raise FieldInvalidError(name or "phone", "is not a valid phone number")
    return number


def _priority(name: str | None, raw: str | None, default: Priority) -> Priority:
    if raw is None:
        return default
    try:
        return Priority(raw.strip().lower())
    except ValueError:
        allowed = ", ".join(p.value for p in Priority)
        raise FieldInvalidError(name or "priority", f"must be one of {allowed}") from None


def _joined(pairs: list[tuple[str, str]]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields[name] = f"{fields[name]}, {value}" if name in fields else value
    return fields


def _json_fields(body: bytes) -> dict[str, str]:
    data = jsonbody.document(body, "a JSON object of fields")
    return {str(k): _text(v) for k, v in data.items() if v is not None}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return json.dumps(value, ensure_ascii=False)


def _multipart(form: Form, request: WebhookRequest) -> Submission:
    header = f"Content-Type: {request.header('content-type')}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    document = BytesParser(policy=DEFAULT).parsebytes(header + request.body)
    if not document.is_multipart():
        raise FieldInvalidError("(body)", "is not a multipart/form-data body with a boundary")
    pairs: list[tuple[str, str]] = []
    files: list[UploadedFile] = []
    limits = form.attachments
    for part in document.iter_parts():
        assert isinstance(part, EmailMessage)
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        filename = part.get_filename()
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        if filename is None:
            pairs.append((name, content.decode(part.get_content_charset() or "utf-8", errors="replace")))
            continue
        if not content:
            continue  # an empty file input
        content_type = part.get_content_type()
        if content_type not in limits.types:
            raise UnsupportedMediaTypeError(f"attachment {filename!r} of type", content_type, limits.types)
        if len(content) > limits.max_file_bytes:
            raise PayloadTooLargeError(f"attachment {filename!r}", len(content), limits.max_file_bytes)
        files.append(UploadedFile(name, filename, content_type, content))
    if len(files) > limits.max_files:
        raise FieldInvalidError("(files)", f"at most {limits.max_files} files may be attached")
    return Submission(_joined(pairs), files)


def _typeform(body: bytes) -> Submission:
    try:
        data = jsonbody.loads(body)
        response = data["form_response"]
        answers = response.get("answers") or []
        hidden = response.get("hidden") or {}
    except (ValueError, RecursionError, KeyError, TypeError, AttributeError):  # ValueError: JSON, UTF-8, an int
        raise FieldInvalidError("form_response", "is missing; not a Typeform webhook") from None
    if not isinstance(answers, list) or not all(
        isinstance(a, dict) and isinstance(a.get("field"), dict) for a in answers
    ):
        raise FieldInvalidError("form_response.answers", "must be a list of answers, each with a field object")
    if not isinstance(hidden, dict):
        raise FieldInvalidError("form_response.hidden", "must be an object")
    fields: dict[str, str] = {}
    for answer in answers:
        ref = answer["field"].get("ref")
        if isinstance(ref, str) and ref:
            fields[ref] = _typeform_value(answer)
    for name, value in hidden.items():
        fields.setdefault(str(name), _text(value))
    token = response.get("token") or data.get("event_id")
    return Submission(fields, submission_id=f"typeform-{token}" if token else None)


def _typeform_value(answer: dict[str, Any]) -> str:
    kind = str(answer.get("type", ""))
    value = answer.get(kind)
    if kind == "choice" and isinstance(value, dict):
        return str(value.get("label") or value.get("other") or "")
    if kind == "choices" and isinstance(value, dict):
        labels = value.get("labels")
        chosen = [str(label) for label in labels] if isinstance(labels, list) else []
        return ", ".join([*chosen, *([str(value["other"])] if value.get("other") else [])])
    return "" if value is None else _text(value)


# ------------------------------------------------------------------------------------------- the channel


def section(policy: Policy) -> dict[str, Form]:
    forms: dict[str, Form] | None = policy.section("forms")
    return forms or {}


def receive(route: Route, request: WebhookRequest, ctx: ReceiveContext) -> Answer:
    """Verify and validate first, so a rejected request stores nothing; then archive, then enqueue."""
    form_id = ctx.params["form_id"]
    form = section(ctx.policy).get(form_id)
    if form is None:
        raise FormNotFoundError(form_id)
    within(request, min(form.max_bytes, ctx.max_body_bytes))
    secret = None if isinstance(form.auth, PublicAuth) else ctx.secrets.get(secret_name(form_id))
    verify(form, request, secret, now=ctx.received_at.timestamp())
    made = form_message(form_id, request, policy=ctx.policy, receipt_id=ctx.receipt_id, received_at=ctx.received_at)
    body = json.dumps({"receipt": ctx.receipt_id})
    if made is None:
        return Answer(202, "application/json", body, {"SpamDropped": 1}, {"form_id": form_id, "queued": False})
    message, files = made
    ctx.inbox.archive_request(message.raw_archive_key, ctx.receipt_id, ctx.received_at, request)
    for attachment, content in files:
        ctx.inbox.store_attachment(attachment, content)
    ctx.inbox.enqueue(message)
    return Answer(202, "application/json", body, {"FormReceived": 1}, {"form_id": form_id, "queued": True})


def form_message(
    form_id: str, request: WebhookRequest, *, policy: Policy, receipt_id: str, received_at: datetime
) -> tuple[InboundMessage, list[tuple[Attachment, bytes]]] | None:
    """A verified form post as the message it makes, with its files; None for spam (a filled honeypot)."""
    from intake.inbox import attachment_of, raw_key

    form = section(policy).get(form_id)
    if form is None:
        raise FormNotFoundError(form_id)
    submission = parse(form, request)
    if is_spam(form, submission):
        return None
    attachments = tuple(
        attachment_of(receipt_id, received_at, n, upload.filename, upload.content_type, upload.content)
        for n, upload in enumerate(submission.files, start=1)
    )
    message = to_inbound(
        form_id,
        form,
        submission,
        default_region=policy.teams[form.team].default_region,
        receipt_id=receipt_id,
        received_at=received_at,
        raw_archive_key=raw_key(PROVIDER, receipt_id, received_at),
        attachments=attachments,
    )
    return message, [(a, upload.content) for a, upload in zip(attachments, submission.files, strict=True)]


def replay(request: WebhookRequest, ctx: ReplayContext) -> Made:
    form_id = request.path.rsplit("/", 1)[-1]
    made = form_message(form_id, request, policy=ctx.policy, receipt_id=ctx.receipt_id, received_at=ctx.received_at)
    return Made() if made is None else Made([made[0]], made[1])


def sign(sample: Sample, ctx: SignContext) -> Sample:
    """A signed form's `X-Intake-Signature`, a Typeform form's `Typeform-Signature`; a public form as it is."""
    form_id = sample.path.rsplit("/", 1)[-1]
    form = section(ctx.policy).get(form_id)
    if form is None or isinstance(form.auth, PublicAuth):
        return sample
    secret = needs_secret(ctx.secrets, secret_name(form_id), f"form {form_id!r}")
    headers = dict(sample.headers)
    if isinstance(form.auth, SignedAuth):
        stamp = str(int(ctx.now))
        headers["x-intake-timestamp"] = stamp
        headers["x-intake-signature"] = signatures.form_signature(secret, stamp, sample.body)
    elif isinstance(form.auth, TypeformAuth):
        headers["typeform-signature"] = signatures.typeform_signature(secret, sample.body)
    return Sample(sample.path, headers, sample.body)


def operation(route: Route) -> dict[str, Any]:
    from intake import openapi_parts as api

    return api.webhook(
        route.operation,
        "Submit a web form or a Typeform response",
        "The form must be declared under `forms` in intake.yaml, which also says how it is authenticated: `signed` "
        "(X-Intake-Timestamp and X-Intake-Signature), `typeform` (Typeform-Signature) or `public` (an allowed Origin "
        "plus a honeypot field). The raw request is archived and queued before the answer; the ticket is created "
        "asynchronously. A filled honeypot is answered 202 like any other submission and creates nothing.",
        {
            "202": api.json_response("Accepted: archived and queued.", api.REF + "Receipt"),
            **api.problems(
                FieldInvalidError,
                SignatureInvalidError,
                OriginForbiddenError,
                FormNotFoundError,
                PayloadTooLargeError,
                UnsupportedMediaTypeError,
            ),
        },
        parameters=[
            api.parameter("form_id", "path", api.adapter_schema(Name), "the form's key under `forms` in intake.yaml"),
            api.parameter(
                "X-Intake-Timestamp",
                "header",
                {"type": "string", "pattern": "^[0-9]+$"},
                "signed forms: when the request was signed, in unix seconds; must be within the form's "
                "`auth.tolerance_s` (default 300) of the receiver's clock",
            ),
            api.parameter(
                "X-Intake-Signature",
                "header",
                {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
                'signed forms: `sha256=` + hex HMAC-SHA256(secret, "<timestamp>." + raw body)',
            ),
            api.parameter(
                "Typeform-Signature",
                "header",
                {"type": "string", "pattern": "^sha256=[A-Za-z0-9+/]{43}=$"},
                "Typeform forms: `sha256=` + base64 HMAC-SHA256(secret, raw body)",
            ),
            api.parameter(
                "Origin", "header", {"type": "string"}, "public forms: must be one of the form's `auth.origins`"
            ),
        ],
        requestBody={
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"anyOf": [{"$ref": api.REF + "FormFields"}, {"$ref": api.REF + "TypeformWebhook"}]}
                },
                "application/x-www-form-urlencoded": {"schema": {"$ref": api.REF + "UrlencodedFormFields"}},
                "multipart/form-data": {"schema": {"$ref": api.REF + "MultipartFormFields"}},
            },
        },
    )


def address(ctx: ReplyContext) -> ReplyWay:
    """A form is answered by email, at the address it gave (the contact's), or not at all."""
    to = email.contact_email(ctx)
    if to is None:
        raise ReplyUndeliverableError("the form gave no email address to answer at, and the customer has none")
    return email.answer_by_email(ctx, to)


def _secrets(forms: dict[str, Form]) -> list[str]:
    """One per form that checks a signature (a public form has none)."""
    return [secret_name(form_id) for form_id, form in forms.items() if not isinstance(form.auth, PublicAuth)]


CHANNEL = contract.Channel(
    name=PROVIDER,
    title="Web forms and Typeform",
    section="forms",
    section_type=dict[Name, Form],
    kinds={"form": "web form"},
    routes=(
        Route(
            "POST",
            PATH,
            "submitForm",
            open_because="Site backends and Typeform cannot sign SigV4. The receiver checks the form's own "
            "signature (X-Intake-Signature, Typeform-Signature) or, for public forms, origin and honeypot, "
            "and stores nothing when that fails.",
            public=True,  # browsers post public forms here, anonymously (signed forms share the route)
        ),
    ),
    receive=receive,
    operation=operation,
    sign=sign,
    replay=replay,
    webhook_secrets=_secrets,
    teams=lambda forms: [(f"{form_id}.team", form.team) for form_id, form in forms.items()],
    setup=lambda forms: [
        (
            "FormWebhookUrl" + "".join(part.capitalize() for part in re.split(r"[-_]+", form_id)),
            PATH.replace("{form_id}", form_id),
            f"Point form '{form_id}' ({form.auth.kind.value}) at this URL",
        )
        for form_id, form in forms.items()
    ],
    samples="forms",
    address=address,
)
