"""Email on moto, mail that used to fail the worker: senders in every form a mail server accepts, and messages
past the limits of size and shape. Each becomes a ticket (or a quarantined email) with what was left out named."""

from __future__ import annotations

import time
from typing import Any

import pytest

from intake.channels import email_mime
from tests.aws.conftest import Stack
from tests.aws.test_email_pipeline import inject, tickets


def raw_email(sender: str | None, body: str = "My order 881 never came.", **headers: str) -> bytes:
    lines = [f"From: {sender}"] if sender is not None else []
    lines += ["To: support@example.com", "Subject: Order 881", "Message-ID: <o881@mail.example.org>"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + f"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()


def the_ticket(stack: Stack) -> dict[str, Any]:
    assert stack.queued() == 0  # nothing left to retry: the worker took it
    [ticket] = tickets(stack)
    return ticket


@pytest.mark.parametrize(
    ("sender", "identity", "name"),
    [
        ("Guest <guest@localhost>", None, "Guest"),  # a machine's account: shared by everyone's machine
        ("jane@corp", None, None),  # an intranet name without a dot
        ("jane@exa", None, None),  # a truncated domain
        ("Jo <user@[192.0.2.1]>", None, "Jo"),  # an IP literal
        ("root@localhost.localdomain", None, None),
        ("José <José@Exämple.com>", "josé@exämple.com", "José"),  # internationalized, kept as written
        ("用户@例子.广告", "用户@例子.广告", None),
        ('"John Doe" <"john.doe"@example.com>', '"john.doe"@example.com', "John Doe"),  # a quoted local part
        ('"john doe"@example.com', None, None),  # quoted, with a space: not the model's Email
        ("Team: ann@example.com, bob@example.org;", "ann@example.com", None),  # group syntax: the first
        ("ann@example.com, bob@example.org", "ann@example.com", None),  # several authors: the first
        ("undisclosed-recipients:;", None, None),
        ("", None, None),
        (None, None, None),  # no From at all
    ],
)
def test_a_sender_in_any_form_becomes_a_ticket_kept_as_written(
    stack: Stack, sender: str | None, identity: str | None, name: str | None
) -> None:
    inject(stack, raw_email(sender))
    stack.work()

    ticket = the_ticket(stack)
    [message] = ticket["messages"]
    assert message["text"].startswith("My order 881 never came.")
    assert message["metadata"]["from"] == (sender or None)
    assert ticket["contact"]["emails"] == ([identity] if identity else [])
    assert ticket["contact"]["name"] == name


def test_two_guests_at_localhost_are_not_made_one_customer(stack: Stack) -> None:
    inject(stack, raw_email("guest@localhost", Message_ID="<g1@a.example>"))
    inject(stack, raw_email("guest@localhost", Message_ID="<g2@b.example>").replace(b"o881@", b"other@"))
    stack.work()

    assert len({t["contact"]["id"] for t in tickets(stack)}) == 2


def test_several_from_headers_are_all_kept_and_the_first_names_the_contact(stack: Stack) -> None:
    inject(stack, raw_email("Ana <ana@example.org>", From="Bob <bob@example.org>"))
    stack.work()

    ticket = the_ticket(stack)
    assert ticket["messages"][0]["metadata"]["from"] == "Ana <ana@example.org>, Bob <bob@example.org>"
    assert ticket["contact"]["emails"] == ["ana@example.org"]


def test_no_acknowledgment_goes_to_an_address_that_is_no_identity(stack: Stack) -> None:
    inject(stack, raw_email("guest@localhost"))
    stack.work()

    assert len(tickets(stack)) == 1 and stack.sent() == []


def test_mail_no_team_takes_is_quarantined_as_unroutable(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from intake import runtime
    from tests.aws.conftest import ROOT

    policy = (ROOT / "intake.yaml").read_text().replace("email:\n  default_team: support\n", "email:\n")
    config = stack.outbox.parent / "intake.yaml"
    config.write_text(policy)
    monkeypatch.setenv("INTAKE_CONFIG", str(config))
    runtime.reset()

    raw = raw_email("ana@example.org").replace(b"To: support@example.com", b"To: sales@elsewhere.example")
    inject(stack, raw, to="sales@elsewhere.example")
    stack.work()

    assert tickets(stack) == [] and stack.queued() == 0
    [held] = stack.get("/quarantine")[1]["items"]
    assert held["reasons"] == ["unroutable"]

    # When an agent releases it without naming a team, then naming an unknown one: 409 and 400, nothing made
    status, problem = stack.post_api(f"/quarantine/{held['id']}/release")
    assert (status, problem["type"]) == (409, "urn:intake:problem:team-required"), problem
    status, problem = stack.post_api(f"/quarantine/{held['id']}/release", {"team": "nobody"})
    assert (status, problem["field"]) == (400, "team"), problem
    assert tickets(stack) == [] and stack.get("/quarantine")[1]["items"][0]["status"] == "held"

    # Then naming the team makes the ticket there
    status, released = stack.post_api(f"/quarantine/{held['id']}/release", {"team": "support"})
    assert status == 200 and released["status"] == "released", released
    [ticket] = tickets(stack)
    assert (ticket["id"], ticket["team"]) == (released["ticket_id"], "support")


def test_a_message_with_5000_parts_becomes_a_ticket_with_the_rest_listed_as_dropped(stack: Stack) -> None:
    files = "".join(
        f'--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename="f{n}.txt"\r\n\r\n{n}\r\n'
        for n in range(5000)
    )
    raw = (
        "From: ana@example.org\r\nTo: support@example.com\r\nSubject: Logs\r\nMessage-ID: <logs@example.org>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain\r\n\r\nAll the logs.\r\n{files}--b--\r\n"
    ).encode()
    started = time.monotonic()

    inject(stack, raw)
    stack.work()

    [message] = the_ticket(stack)["messages"]
    assert time.monotonic() - started < 60
    assert message["text"].startswith("All the logs.")
    assert len(message["attachments"]) == email_mime.MAX_PARTS - 2  # the root and the text are parts too
    reason = f"over the limit of {email_mime.MAX_PARTS} MIME parts"
    assert message["metadata"]["dropped"] == [{"filename": "the rest of the message", "reason": reason}]


def test_a_2000_deep_nested_message_becomes_a_ticket_with_the_depth_listed_as_dropped(stack: Stack) -> None:
    depth = 2000
    opening = "".join(f"--b{n}\r\nContent-Type: multipart/mixed; boundary=b{n + 1}\r\n\r\n" for n in range(depth))
    closing = "".join(f"\r\n--b{n}--\r\n" for n in reversed(range(depth)))
    raw = (
        "From: ana@example.org\r\nTo: support@example.com\r\nSubject: Russian dolls\r\nMessage-ID: <deep@x.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
        f"{opening}--b{depth}\r\nContent-Type: text/plain\r\n\r\nat the bottom\r\n--b{depth}--{closing}"
    ).encode()

    inject(stack, raw)
    stack.work()

    ticket = the_ticket(stack)
    assert ticket["subject"] == "Russian dolls"
    reason = f"nested more than {email_mime.MAX_DEPTH} levels deep"
    assert ticket["messages"][0]["metadata"]["dropped"] == [{"filename": "part-1", "reason": reason}]


def test_a_long_text_keeps_its_head_on_the_ticket_and_all_of_it_in_the_archive(stack: Stack) -> None:
    body = "Ça ne marche pas 😀. " * 20_000  # ~480 kB of UTF-8

    inject(stack, raw_email("ana@example.org", body=body))
    stack.work()

    [message] = the_ticket(stack)["messages"]
    assert body.startswith(message["text"]) and 60_000 < len(message["text"].encode()) <= 64 * 1024
    key = message["metadata"]["full_text_key"]
    archived = stack.s3.get_object(Bucket=stack.resources.bucket, Key=key)["Body"].read().decode()
    assert archived == body.strip()


def test_huge_headers_are_cut_to_their_share_and_the_email_is_a_ticket(stack: Stack) -> None:
    recipients = ", ".join(f"person{n}@example.org" for n in range(20_000))
    references = " ".join(f"<r{n}@example.org>" for n in range(20_000))
    raw = raw_email(
        "Ana " * 2_500 + "<ana@example.org>",
        Cc=recipients,
        References=references,
        In_Reply_To=references,
    ).replace(b"Subject: Order 881", b"Subject: " + "Très long ".encode() * 50_000)

    inject(stack, raw)
    stack.work()

    ticket = the_ticket(stack)
    [message] = ticket["messages"]
    assert len(ticket["subject"]) == 998 and len(ticket["contact"]["name"]) == 199  # 200, stripped
    assert 0 < len(message["metadata"]["cc"]) < 20_000 and message["metadata"]["cc"][0] == "person0@example.org"
    assert message["metadata"]["references"][-1] == "r19999@example.org"  # the latest are kept
    # the acknowledgment answers under the subject as the ticket has it, not the 500 kB one
    [acknowledgment] = stack.sent()
    assert acknowledgment["Subject"] == f"Re: {ticket['subject']} [#{ticket['reference']}]"
