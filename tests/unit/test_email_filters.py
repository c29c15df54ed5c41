"""The email filters one by one, on real parsed mail and a real store (SQLite): what each one decides alone, and
that the list stops at the first verdict. `ingest_email` runs them; the email tests under tests/aws run the whole."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ulid import ULID

from intake.channels import email_mime
from intake.config import Policy
from intake.emails import (
    Dropped,
    EmailStores,
    Quarantined,
    Sorting,
    automatic,
    automatic_outside_thread,
    follow_up,
    held_by_verdicts,
    ingest_email,
    our_own,
    routed,
    sort_email,
)
from intake.local.table import SqliteTable
from intake.model import EmailArrived
from intake.store import Store

T0 = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    table = SqliteTable(tmp_path / "tickets.db")
    yield Store(table, "tickets")  # type: ignore[arg-type]  # the table port
    table.close()


def email(*headers: str, body: str = "Hello, my order has not arrived.") -> bytes:
    given = {line.split(":", 1)[0].lower() for line in headers}
    defaults = [
        line
        for line in (
            "From: Jane Doe <jane@example.org>",
            "To: support@example.com",
            "Subject: Where is my order?",
            f"Message-ID: <{ULID()}@example.org>",
        )
        if line.split(":", 1)[0].lower() not in given
    ]
    return ("\r\n".join((*defaults, *headers)) + "\r\n\r\n" + body + "\r\n").encode()


def arrived_at(raw: bytes, archive: dict[str, bytes], recipients: tuple[str, ...] = ()) -> EmailArrived:
    receipt_id = str(ULID())
    key = f"raw/2026/11/23/smtp/{receipt_id}.eml"
    archive[key] = raw
    return EmailArrived(
        provider="smtp", receipt_id=receipt_id, received_at=T0, raw_archive_key=key, recipients=recipients
    )


def sorting(raw: bytes, **marks: object) -> Sorting:
    arrived = arrived_at(raw, {})
    return Sorting(email_mime.parse(raw), arrived, {}, **marks)  # type: ignore[arg-type]


def opened_ticket(store: Store, policy: Policy, raw: bytes) -> str:
    """A ticket opened by `raw` through the whole email path: its Message-ID is recorded for replies."""
    archive: dict[str, bytes] = {}
    stores = EmailStores(read=archive.__getitem__, put_attachment=lambda attachment, content: None)
    result = ingest_email(store, stores, arrived_at(raw, archive), policy, lambda: str(ULID()))
    assert result is not None
    return result.ticket_id


def unrouted(policy: Policy) -> Policy:
    """The shipped policy without a default team for mail: only the routed addresses take mail."""
    assert policy.email is not None
    return policy.model_copy(update={"email": policy.email.model_copy(update={"default_team": None})})


# ------------------------------------------------------------------------------------- held_by_verdicts


def test_a_spam_verdict_quarantines_the_email(store: Store, policy: Policy) -> None:
    mail = Sorting(email_mime.parse(email()), arrived_at(email(), {}), {"spam": "FAIL", "virus": "PASS"})

    assert held_by_verdicts(mail, store, policy) == Quarantined(("spam",))


def test_an_email_being_released_passes_its_verdicts(store: Store, policy: Policy) -> None:
    mail = Sorting(email_mime.parse(email()), arrived_at(email(), {}), {"spam": "FAIL"}, release=True)

    assert held_by_verdicts(mail, store, policy) is mail


# ----------------------------------------------------------------------------------------------- automatic


def test_an_out_of_office_reply_is_marked_automatic(store: Store, policy: Policy) -> None:
    mail = sorting(email("Auto-Submitted: auto-replied", "Subject: Out of office"))

    assert automatic(mail, store, policy) == Sorting(mail.parsed, mail.arrived, {}, auto=email_mime.AUTO_REPLY)


def test_a_persons_mail_is_not_marked_automatic(store: Store, policy: Policy) -> None:
    mail = sorting(email())

    assert automatic(mail, store, policy).auto is None  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------------- our_own


def test_mail_from_our_own_address_in_any_case_is_our_own(store: Store, policy: Policy) -> None:
    mail = sorting(email("From: Support <Support@Example.com>"))

    assert our_own(mail, store, policy).auto == "own"  # type: ignore[union-attr]


def test_a_bounce_from_our_own_address_stays_a_bounce(store: Store, policy: Policy) -> None:
    mail = sorting(email("From: support@example.com"), auto=email_mime.BOUNCE)

    assert our_own(mail, store, policy) is mail


def test_a_customers_mail_is_not_our_own(store: Store, policy: Policy) -> None:
    mail = sorting(email())

    assert our_own(mail, store, policy) is mail


# ----------------------------------------------------------------------------------------------- follow_up


def test_a_reply_to_a_tickets_email_follows_it_up(store: Store, policy: Policy) -> None:
    ticket_id = opened_ticket(store, policy, email("Message-ID: <first@example.org>"))
    mail = sorting(email("In-Reply-To: <first@example.org>", "Subject: Re: Where is my order?"))

    found = follow_up(mail, store, policy)

    assert isinstance(found, Sorting)
    assert found.thread is not None
    assert found.thread.ticket.id == ticket_id


def test_a_new_email_follows_nothing_up(store: Store, policy: Policy) -> None:
    opened_ticket(store, policy, email("Message-ID: <first@example.org>"))

    found = follow_up(sorting(email()), store, policy)

    assert isinstance(found, Sorting)
    assert found.thread is None


# -------------------------------------------------------------------------------- automatic_outside_thread


def test_automatic_mail_outside_any_thread_is_dropped_with_its_kind(store: Store, policy: Policy) -> None:
    mail = sorting(email(), auto=email_mime.BOUNCE)

    assert automatic_outside_thread(mail, store, policy) == Dropped("bounce mail outside an open thread")


def test_automatic_mail_in_an_open_thread_goes_on(store: Store, policy: Policy) -> None:
    opened_ticket(store, policy, email("Message-ID: <first@example.org>"))
    threaded = follow_up(sorting(email("In-Reply-To: <first@example.org>"), auto="own"), store, policy)
    assert isinstance(threaded, Sorting)

    assert automatic_outside_thread(threaded, store, policy) is threaded


def test_a_persons_new_mail_goes_on(store: Store, policy: Policy) -> None:
    mail = sorting(email())

    assert automatic_outside_thread(mail, store, policy) is mail


# -------------------------------------------------------------------------------------------------- routed


def test_a_follow_up_goes_to_its_tickets_team(store: Store, policy: Policy) -> None:
    opened_ticket(store, policy, email("Message-ID: <first@example.org>"))
    threaded = follow_up(sorting(email("In-Reply-To: <first@example.org>", "To: elsewhere@example.net")), store, policy)
    assert isinstance(threaded, Sorting)

    found = routed(threaded, store, unrouted(policy))

    assert isinstance(found, Sorting)
    assert found.team == "support"


def test_new_mail_goes_to_the_team_of_its_recipient(store: Store, policy: Policy) -> None:
    found = routed(sorting(email("To: Support@Example.com")), store, unrouted(policy))

    assert isinstance(found, Sorting)
    assert found.team == "support"


def test_mail_no_team_takes_is_quarantined_as_unroutable(store: Store, policy: Policy) -> None:
    mail = sorting(email("To: elsewhere@example.net"))

    assert routed(mail, store, unrouted(policy)) == Quarantined(("unroutable",))


def test_unroutable_mail_being_released_goes_to_the_agents_team_or_to_none(store: Store, policy: Policy) -> None:
    mail = sorting(email("To: elsewhere@example.net"), release=True)

    chosen = routed(Sorting(mail.parsed, mail.arrived, {}, release=True, team="support"), store, unrouted(policy))
    left = routed(mail, store, unrouted(policy))

    assert isinstance(chosen, Sorting)
    assert chosen.team == "support"
    assert isinstance(left, Sorting)
    assert left.team is None


# ---------------------------------------------------------------------------------------------- sort_email


def test_the_first_filter_that_stops_an_email_decides(store: Store, policy: Policy) -> None:
    raw = email("Auto-Submitted: auto-replied", "To: elsewhere@example.net")
    mail = Sorting(email_mime.parse(raw), arrived_at(raw, {}), {"virus": "FAIL"})

    assert sort_email(mail, store, unrouted(policy)) == Quarantined(("virus",))


def test_an_email_that_passes_every_filter_carries_their_marks(store: Store, policy: Policy) -> None:
    ticket_id = opened_ticket(store, policy, email("Message-ID: <first@example.org>"))

    found = sort_email(sorting(email("From: support@example.com", "In-Reply-To: <first@example.org>")), store, policy)

    assert isinstance(found, Sorting)
    assert (found.auto, found.team) == ("own", "support")
    assert found.thread is not None
    assert found.thread.ticket.id == ticket_id
