"""One customer across channels: identities link contacts, duplicates merge, the API shows it all."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ulid import ULID

from intake.ingest import ingest
from intake.model import Channel, ScopedUser, Sender
from tests.aws.conftest import Stack
from tests.aws.test_ingest_core import T0, message

PHONE = "+33612345678"
EMAIL = "ana@example.com"


def new_id() -> str:
    return str(ULID())


def test_same_number_on_phone_sms_and_whatsapp_is_one_contact(stack: Stack) -> None:
    for n, channel in enumerate((Channel.PHONE, Channel.SMS, Channel.WHATSAPP)):
        ingest(
            stack.store,
            message(
                channel=channel,
                provider="twilio",
                provider_message_id=f"m{n}",
                thread_key=f"{channel.value}#{PHONE}",
                sender=Sender(phone=PHONE),
            ),
            new_id,
        )

    contacts = {t["contact_id"]["S"] for t in stack.tickets()}
    assert len(contacts) == 1 and len(stack.tickets()) == 3
    status, detail = stack.get(f"/contacts/{contacts.pop()}")
    assert status == 200
    assert sorted(t["channel"] for t in detail["tickets"]) == ["phone", "sms", "whatsapp"]
    assert detail["contact"]["phones"] == [PHONE]


def test_a_form_giving_an_email_and_a_phone_merges_the_two_contacts_it_links(stack: Stack) -> None:
    # Given a customer known by phone (an SMS) and, separately, by email (a form)
    sms = ingest(
        stack.store,
        message(channel=Channel.SMS, provider_message_id="s1", thread_key=f"sms#{PHONE}", sender=Sender(phone=PHONE)),
        new_id,
    )
    form = ingest(
        stack.store,
        message(provider_message_id="f1", thread_key="form#1", sender=Sender(name="Ana", email=EMAIL)),
        new_id,
    )
    by_phone = stack.store.ticket(sms.ticket_id).contact_id
    by_email = stack.store.ticket(form.ticket_id).contact_id
    assert by_phone != by_email

    # When a form gives both
    both = ingest(
        stack.store,
        message(
            provider_message_id="f2",
            thread_key="form#2",
            received_at=T0 + timedelta(hours=1),
            sender=Sender(name="Ana Silva", email=EMAIL, phone=PHONE),
        ),
        new_id,
    )

    # Then the older contact survives with every identity, the other points to it, and an event says so
    survivor, absorbed = sorted([by_phone, by_email])
    assert stack.store.ticket(both.ticket_id).contact_id == survivor
    kept = stack.store.contact(survivor)
    gone = stack.store.contact(absorbed)
    assert kept is not None and gone is not None
    assert set(kept.phones) == {PHONE} and set(kept.emails) == {EMAIL}
    assert kept.merged == (absorbed,) and gone.merged_into == survivor
    assert stack.store.identity("phone", PHONE) == stack.store.identity("email", EMAIL) == survivor
    events = [i for i in stack.items() if i["PK"]["S"] == f"CONTACT#{survivor}" and i["SK"]["S"].startswith("EVT#")]
    assert [e["kind"]["S"] for e in events] == ["merged"]

    # And either contact id shows the whole customer: three tickets on two channels
    for contact_id in (survivor, absorbed):
        detail = stack.get(f"/contacts/{contact_id}")[1]
        assert detail["contact"]["id"] == survivor
        assert len(detail["tickets"]) == 3


def test_a_contact_made_under_an_idna_domains_ascii_form_is_found_by_its_unicode_one(stack: Stack) -> None:
    # Given a customer whose contact was made before Intake read `xn--` domains as Unicode (its identity written so)
    legacy = ingest(
        stack.store,
        message(provider_message_id="e1", thread_key="form#1", sender=Sender(email="jorg@xn--bcher-kva.de")),
        new_id,
    )
    before = stack.store.ticket(legacy.ticket_id).contact_id

    # When they write again, their address now read as `bücher.de`
    later = ingest(
        stack.store,
        message(provider_message_id="e2", thread_key="form#2", sender=Sender(email="jorg@bücher.de")),
        new_id,
    )

    # Then it is the same contact, which now holds the Unicode form too (the next lookup needs no fallback)
    assert stack.store.ticket(later.ticket_id).contact_id == before
    status, detail = stack.get(f"/contacts/{before}")
    assert status == 200 and set(detail["contact"]["emails"]) == {"jorg@xn--bcher-kva.de", "jorg@bücher.de"}
    assert len(detail["tickets"]) == 2


def test_unknown_contact_is_a_404_problem(stack: Stack) -> None:
    status, problem = stack.get(f"/contacts/{new_id()}")
    assert (status, problem["type"]) == (404, "urn:intake:problem:contact-not-found")


@pytest.mark.parametrize(
    ("kind", "provider", "sender"),
    [
        (Channel.WHATSAPP, "whatsapp", Sender(phone=PHONE)),
        ("messenger", "messenger", Sender(user=ScopedUser(kind="psid", account="page-1", id="psid-1"))),
        ("instagram", "instagram", Sender(user=ScopedUser(kind="igsid", account="ig-1", id="igsid-1"))),
    ],
)
def test_a_meta_conversation_shows_when_its_24_hour_reply_window_closes(
    stack: Stack, kind: str, provider: str, sender: Sender
) -> None:
    first = message(
        channel=kind,
        provider=provider,
        provider_message_id="wamid.1",
        thread_key=f"{kind}#{PHONE}",
        sender=sender,
    )
    created = ingest(stack.store, first, new_id)
    assert stack.store.ticket(created.ticket_id).reply_window_closes_at == T0 + timedelta(hours=24)

    later = first.model_copy(update={"provider_message_id": "wamid.3", "received_at": T0 + timedelta(hours=5)})
    earlier = first.model_copy(update={"provider_message_id": "wamid.2", "received_at": T0 + timedelta(hours=2)})
    ingest(stack.store, later, new_id)
    ingest(stack.store, earlier, new_id)  # delivered out of order: the window does not move back

    ticket = stack.get(f"/tickets/{created.ticket_id}")[1]
    assert ticket["reply_window_closes_at"] == "2026-11-21T14:00:00Z"
    assert ticket["last_inbound_at"] == "2026-11-20T14:00:00Z"
    assert ticket["message_count"] == 3


def test_tickets_on_other_channels_have_no_reply_window(stack: Stack) -> None:
    created = ingest(stack.store, message(), new_id)
    assert stack.store.ticket(created.ticket_id).reply_window_closes_at is None
