"""What the receiver does with a provider's request before it answers: check, store, enqueue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from intake.channels import forms
from intake.config import Policy, PublicAuth
from intake.errors import FormNotFoundError, PayloadTooLargeError
from intake.inbox import Inbox, attachment_key, raw_key
from intake.model import Attachment, WebhookRequest
from intake.secrets import Secrets


@dataclass(frozen=True)
class Receipt:
    receipt_id: str
    queued: bool  # False: accepted and dropped (a filled honeypot)


def receive_form(
    form_id: str,
    request: WebhookRequest,
    *,
    policy: Policy,
    secrets: Secrets,
    inbox: Inbox,
    received_at: datetime,
    receipt_id: str,
    max_body_bytes: int,
) -> Receipt:
    """Verify and validate first, so a rejected request stores nothing; then archive, then enqueue."""
    form = policy.forms.get(form_id)
    if form is None:
        raise FormNotFoundError(form_id)
    limit = min(form.max_bytes, max_body_bytes)
    if len(request.body) > limit:
        raise PayloadTooLargeError("the request body", len(request.body), limit)
    secret = None if isinstance(form.auth, PublicAuth) else secrets.get(forms.secret_name(form_id))
    forms.verify(form, request, secret, now=received_at.timestamp())
    submission = forms.parse(form, request)
    if forms.is_spam(form, submission):
        return Receipt(receipt_id, queued=False)
    attachments = tuple(
        Attachment(
            filename=upload.filename[:255],
            content_type=upload.content_type,
            size=len(upload.content),
            sha256=upload.sha256,
            s3_key=attachment_key(receipt_id, received_at, n, upload.filename),
        )
        for n, upload in enumerate(submission.files, start=1)
    )
    archive_key = raw_key(forms.PROVIDER, receipt_id, received_at)
    message = forms.to_inbound(
        form_id,
        form,
        submission,
        default_region=policy.teams[form.team].default_region,
        receipt_id=receipt_id,
        received_at=received_at,
        raw_archive_key=archive_key,
        attachments=attachments,
    )
    inbox.archive_request(archive_key, receipt_id, received_at, request)
    for attachment, upload in zip(attachments, submission.files, strict=True):
        inbox.store_attachment(attachment, upload.content)
    inbox.enqueue(message)
    return Receipt(receipt_id, queued=True)
