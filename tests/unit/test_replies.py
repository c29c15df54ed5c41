"""Replies' pure rules: where a reply goes, WhatsApp's 24-hour window, the quoted email, the status reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from intake.channels import email, twilio, whatsapp
from intake.channels.sending import OutboundReply, QuotedMessage, ReplyUndeliverableError, ReplyWay, WindowClosedError
from intake.config import Policy
from intake.errors import FieldInvalidError
from intake.model import (
    DELIVERY_RANK,
    Channel,
    Contact,
    DeliveryState,
    Direction,
    Message,
    Priority,
    Status,
    TicketDetail,
)
from intake.policy import load_policy
from intake.replies import ReplyRequest, address

POLICY = load_policy(Path(__file__).resolve().parents[2] / "intake.yaml")
NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
TICKET = "01JDQ8Z1W3C9G7T2M4K6P8R0SX"
CONTACT = "01JDQ8Z1W3C9G7T2M4K6P8R0SY"


def _ticket(thread_key: str, channel: Channel, *messages: Message, last_inbound: datetime = NOW) -> TicketDetail:
    contact = Contact(id=CONTACT, name="Erin", emails=("erin@example.com",), created_at=NOW)
    return TicketDetail(
        id=TICKET,
        reference=TICKET[-8:],
        channel=channel,
        team="support",
        priority=Priority.NORMAL,
        status=Status.OPEN,
        contact_id=CONTACT,
        subject="Broken",
        thread_key=thread_key,
        created_at=NOW,
        updated_at=NOW,
        last_inbound_at=last_inbound,
        message_count=1,
        contact=contact,
        messages=list(messages),
        events=[],
    )


def route(ticket: TicketDetail, policy: Policy, request: ReplyRequest | None = None) -> ReplyWay:
    return address(ticket, policy, request or ReplyRequest(text="Hello", by="ana"), NOW)


def _inbound(provider: str, channel: Channel, **metadata: Any) -> Message:
    return Message(
        ticket_id=TICKET,
        provider=provider,
        provider_message_id="m1",
        receipt_id=TICKET,
        direction=Direction.INBOUND,
        received_at=NOW,
        channel=channel,
        text="Help",
        metadata=metadata,
    )


def test_an_sms_is_answered_from_the_number_it_was_sent_to() -> None:
    ticket = _ticket("sms#+33612345678", Channel.SMS, _inbound("twilio", Channel.SMS, To="+33186950000"))

    way = route(ticket, POLICY)

    assert (way.provider, way.channel, way.to, way.sender) == ("twilio", Channel.SMS, "+33612345678", "+33186950000")


def test_a_voicemail_from_a_landline_cannot_be_texted() -> None:
    voice = {"called": "+33186950000"}
    mobile = _ticket("phone#+33612345678", Channel.PHONE, _inbound("twilio", Channel.PHONE, voice=voice))
    landline = _ticket("phone#+33145678901", Channel.PHONE, _inbound("twilio", Channel.PHONE, voice=voice))

    assert route(mobile, POLICY).to == "+33612345678"
    with pytest.raises(ReplyUndeliverableError, match="call them back"):
        route(landline, POLICY)


def test_an_email_answers_the_latest_message_id_from_the_teams_address() -> None:
    mail = _inbound("email", Channel.EMAIL, message_id="b@x", references=["a@x"], **{"from": "Erin <erin@x.example>"})

    way = route(_ticket("email#a@x", Channel.EMAIL, mail), POLICY)

    assert (way.to, way.sender, way.sender_name) == ("erin@x.example", "support@example.com", "Customer Support")
    assert way.thread == {"in_reply_to": "b@x", "references": ["a@x", "b@x"]}
    assert way.subject == f"Re: Broken [#{TICKET[-8:]}]"


@pytest.mark.parametrize(
    ("sender", "to"),
    [
        ("Jörg <jorg@bücher.de>", "jorg@xn--bcher-kva.de"),  # an internationalized domain, as SES takes it
        ("jorg@xn--bcher-kva.de", "jorg@xn--bcher-kva.de"),
        ("jörg@bücher.de", "erin@example.com"),  # an internationalized local part: SES cannot, the contact's address
    ],
)
def test_an_email_reply_goes_to_an_address_mail_servers_take(sender: str, to: str) -> None:
    mail = _inbound("email", Channel.EMAIL, message_id="b@x", **{"from": sender})

    assert route(_ticket("email#b@x", Channel.EMAIL, mail), POLICY).to == to


def test_whatsapp_is_free_text_for_24_hours_then_a_template_or_409() -> None:
    message = _inbound("whatsapp", Channel.WHATSAPP, wa_id="33612345678", phone_number_id="106540352242922")
    inside = _ticket("whatsapp#+33612345678", Channel.WHATSAPP, message, last_inbound=NOW - timedelta(hours=23))
    outside = _ticket("whatsapp#+33612345678", Channel.WHATSAPP, message, last_inbound=NOW - timedelta(hours=24))
    text = ReplyRequest(text="Hello", by="ana")
    templated = ReplyRequest(text="Hello", by="ana", template="support_followup")

    assert route(inside, POLICY, text).template is None
    with pytest.raises(WindowClosedError) as closed:
        route(outside, POLICY, text)
    assert closed.value.templates == ["support_followup"]
    template = route(outside, POLICY, templated).template
    assert template is not None and template.parameters == ("Erin", TICKET[-8:], "Hello")
    with pytest.raises(FieldInvalidError):
        route(outside, POLICY, ReplyRequest(text="x", by="a", template="nope"))


def test_whatsapp_through_twilio_is_free_text_for_24_hours_then_a_409_that_names_no_template() -> None:
    message = _inbound("twilio", Channel.WHATSAPP, To="whatsapp:+33186950000")
    inside = _ticket("whatsapp#+33612345678", Channel.WHATSAPP, message, last_inbound=NOW - timedelta(hours=23))
    outside = _ticket("whatsapp#+33612345678", Channel.WHATSAPP, message, last_inbound=NOW - timedelta(hours=24))

    way = route(inside, POLICY)
    assert (way.provider, way.channel, way.to) == ("twilio", Channel.WHATSAPP, "+33612345678")
    assert way.sender == "+33186950000"  # the number written to
    with pytest.raises(WindowClosedError, match="Intake sends none through Twilio") as closed:
        route(outside, POLICY)
    assert closed.value.templates == [] and "whatsapp.templates" not in str(closed.value)
    # a template of the Cloud API's is no help here: Twilio would need its own (Content API), which Intake never sends
    for ticket in (inside, outside):
        with pytest.raises(FieldInvalidError, match="through Twilio"):
            route(ticket, POLICY, ReplyRequest(text="Hello", by="ana", template="support_followup"))


def test_a_template_is_refused_on_a_channel_that_sends_none() -> None:
    mail = _inbound("email", Channel.EMAIL, message_id="b@x", **{"from": "erin@x.example"})

    with pytest.raises(FieldInvalidError, match="only WhatsApp"):
        route(_ticket("email#b@x", Channel.EMAIL, mail), POLICY, ReplyRequest(text="x", by="a", template="t"))


def test_the_email_body_quotes_the_thread_below_the_answer() -> None:
    reply = OutboundReply(
        reply_id="r",
        ticket_id=TICKET,
        reference="R",
        channel="email",
        to="erin@example.com",
        sender="support@example.com",
        text="Fixed.",
        quoted=(QuotedMessage(NOW, "Erin", "It broke\nagain"),),
    )

    assert email.body(reply) == "Fixed.\n\nOn Sat, 05 Dec 2026 10:00:00 +0000, Erin wrote:\n> It broke\n> again\n"


@pytest.mark.parametrize(
    ("status", "state"),
    [("sent", DeliveryState.SENT), ("delivered", DeliveryState.DELIVERED), ("undelivered", DeliveryState.FAILED)],
)
def test_twilio_statuses_map_to_delivery_states(status: str, state: DeliveryState) -> None:
    report = twilio.delivery_status(
        twilio.MessageStatus("SM1", status, "30005" if state is DeliveryState.FAILED else None),
        receipt_id=TICKET,
        received_at=NOW,
        raw_archive_key="raw/k",
    )

    assert report is not None and report.state is state
    assert (report.error is not None) is (state is DeliveryState.FAILED)


def test_statuses_that_say_nothing_new_are_dropped_and_states_only_move_forward() -> None:
    queued = twilio.MessageStatus("SM1", "queued", None)
    deleted = whatsapp.StatusUpdate("wamid.1", "deleted", None, NOW, [])
    failed = whatsapp.StatusUpdate("wamid.1", "failed", None, NOW, [{"code": 131047, "title": "Re-engagement"}])

    assert twilio.delivery_status(queued, receipt_id=TICKET, received_at=NOW, raw_archive_key="k") is None
    assert whatsapp.delivery_status(deleted, receipt_id=TICKET, received_at=NOW, raw_archive_key="k") is None
    report = whatsapp.delivery_status(failed, receipt_id=TICKET, received_at=NOW, raw_archive_key="k")
    assert report is not None and report.error == "WhatsApp error 131047: Re-engagement"
    ranks = [DELIVERY_RANK[s] for s in (DeliveryState.QUEUED, DeliveryState.SENT, DeliveryState.DELIVERED)]
    assert ranks == sorted(ranks) and DELIVERY_RANK[DeliveryState.READ] > DELIVERY_RANK[DeliveryState.DELIVERED]
