"""Notification emails: every kind renders, says what a busy agent needs in both parts, and escapes customers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import UndefinedError

from intake.notify.render import duration, local_time, render
from intake.text import excerpt, snippet

NOW = datetime(2026, 12, 1, 12, 20, tzinfo=UTC)  # Tue 1 Dec 2026, 13:20 in Paris (CET, UTC+1)
SLA_KINDS = ("warning", "breach", "escalation")


def sla_context(**changes: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "team_name": "Customer Support",
        "timezone": "Europe/Paris",
        "reference": "7Q2M4K9D",
        "ticket_url": "https://intake.example.com/tickets/01JDQ8Z1W3C9G7T2M47Q2M4K9D",
        "subject": "Order 1042 arrived damaged",
        "customer_name": "Camille Durand",
        "channel": "whatsapp",
        "priority": "high",
        "target": "first_response",
        "due_at": datetime(2026, 12, 1, 13, 0, tzinfo=UTC),
        "now": NOW,
        "waiting_since": NOW - timedelta(hours=3, minutes=20),
        "last_message": "Bonjour, the vase in order 1042 arrived broken.\nCan you send a new one?",
        "last_message_at": NOW - timedelta(hours=3, minutes=20),
        "label": "80%",
        "level": 2,
    }
    return context | changes


def text_of(html: str) -> str:
    """What a reader sees of the HTML: tags dropped, entities as characters."""
    from html import unescape

    return unescape(re.sub(r"<[^>]+>", "", html))


@pytest.mark.parametrize("kind", SLA_KINDS)
def test_every_sla_notice_states_each_figure_in_text_and_html(kind: str) -> None:
    # Given a notice written 40 min before (warning) or 1 h 20 min after (breach, escalation) the deadline
    now = NOW if kind == "warning" else NOW + timedelta(hours=2)

    # When it is rendered
    subject, text, html = render(kind, sla_context(now=now))

    # Then both parts carry the customer, channel, wait, target, deadline in the team's zone, excerpt, link, reference
    waited = "3 h 20 min" if kind == "warning" else "5 h 20 min"
    figures = [
        "Camille Durand",
        "WhatsApp",
        waited,
        "First response",
        "Tue 1 Dec 2026, 14:00 CET",
        "the vase in order 1042 arrived broken.",
        "Can you send a new one?",
        "https://intake.example.com/tickets/01JDQ8Z1W3C9G7T2M47Q2M4K9D",
        "#7Q2M4K9D",
        "Order 1042 arrived damaged",
    ]
    for figure in figures:
        assert figure in text, figure
        assert figure in text_of(html), figure
    assert 'href="https://intake.example.com/tickets/01JDQ8Z1W3C9G7T2M47Q2M4K9D"' in html
    assert "#7Q2M4K9D" in subject and "Camille Durand" in subject and "\n" not in subject
    assert "<script" not in html.lower()


def test_a_warning_says_how_long_is_left() -> None:
    subject, text, html = render("warning", sla_context())
    assert subject == "First response due in 40 min: Camille Durand (WhatsApp) #7Q2M4K9D"
    assert "in 40 min" in text and "in 40 min" in text_of(html)


def test_a_breach_says_the_deadline_was_missed_and_how_long_ago() -> None:
    subject, text, html = render("breach", sla_context(now=NOW + timedelta(hours=2)))
    assert subject.startswith("SLA missed: first response for Camille Durand")
    assert "1 h 20 min ago" in text and "1 h 20 min ago" in text_of(html)


def test_an_escalation_names_its_level_and_how_overdue_it_is() -> None:
    subject, text, html = render("escalation", sla_context(now=NOW + timedelta(hours=2), level=3))
    assert subject.startswith("Escalation level 3: first response overdue by 1 h 20 min")
    assert "level 3" in text and "level 3" in text_of(html)


@pytest.mark.parametrize(("target", "shown"), [("next_response", "Next response"), ("resolution", "Resolution")])
def test_each_target_is_named(target: str, shown: str) -> None:
    _, text, html = render("warning", sla_context(target=target))
    assert shown in text and shown in text_of(html)


def test_an_unnamed_customer_is_a_customer() -> None:
    subject, text, html = render("breach", sla_context(customer_name=None, now=NOW + timedelta(hours=1)))
    assert "a customer" in subject
    assert "A customer has been waiting" in text and "A customer" in text_of(html)


def test_customer_text_is_escaped_in_html_and_kept_as_written_in_text() -> None:
    # Given a customer whose name, subject and message carry markup
    context = sla_context(
        customer_name='Eve <img src=x onerror="alert(1)">',
        subject="<b>urgent</b> & more",
        last_message="<script>alert('hi')</script>\nHello & welcome",
    )

    # When the notice is rendered
    _, text, html = render("warning", context)

    # Then the HTML shows it as text, never as markup; the text part shows it as written
    assert "<script" not in html and "<img" not in html and "<b>urgent" not in html
    assert "&lt;script&gt;alert(&#39;hi&#39;)&lt;/script&gt;" in html
    assert "&lt;b&gt;urgent&lt;/b&gt; &amp; more" in html
    assert "<script>alert('hi')</script>" in text and "Hello & welcome" in text


def test_a_long_last_message_is_cut_to_a_few_lines_in_both_parts() -> None:
    # Given a last message of twenty numbered lines
    message = "\n".join(f"line {n} of the customer's long story" for n in range(1, 21))

    # When rendered
    _, text, html = render("warning", sla_context(last_message=message))

    # Then only the first lines appear, and the cut is marked
    for part in (text, text_of(html)):
        assert "line 1 of" in part and "line 4 of" in part
        assert "line 5 of" not in part and "line 20 of" not in part
        assert "…" in part


def test_without_a_last_message_no_excerpt_is_shown() -> None:
    _, text, html = render("warning", sla_context(last_message=None, last_message_at=None))
    assert "last message" not in text and "last message" not in text_of(html)


def test_a_missing_context_value_fails_loudly() -> None:
    context = sla_context()
    del context["customer_name"]
    with pytest.raises(UndefinedError):
        render("warning", context)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="newsletter"):
        render("newsletter", sla_context())


# ------------------------------------------------------------------ acknowledgment


def ack_context(**changes: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "team_name": "Customer Support",
        "customer_name": "Camille Durand",
        "reference": "7Q2M4K9D",
        "subject": "Order 1042",
        "next_open": None,
        "timezone": "Europe/Paris",
    }
    return context | changes


def test_acknowledgment_gives_the_reference_and_says_we_have_it() -> None:
    subject, text, html = render("acknowledgment", ack_context())
    assert subject == "Re: Order 1042 [#7Q2M4K9D]"
    for part in (text, text_of(html)):
        assert "[#7Q2M4K9D]" in part and "Camille Durand" in part and "received your message" in part
        assert "closed" not in part


def test_acknowledgment_says_when_a_closed_team_opens_next() -> None:
    # Given a team closed until Monday 09:00 in Paris
    opens = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)

    # When the acknowledgment is written
    subject, text, html = render("acknowledgment", ack_context(next_open=opens, subject=None, customer_name=None))

    # Then it says so, in the team's time
    assert subject == "Request received [#7Q2M4K9D]"
    for part in (text, text_of(html)):
        assert "closed right now" in part and "Mon 7 Dec 2026, 09:00 CET" in part
        assert part.lstrip().startswith("Hello,") or "Hello," in part


def test_acknowledgment_escapes_the_customer_in_html() -> None:
    _, _, html = render("acknowledgment", ack_context(customer_name="<b>Bob</b>", subject="<i>x</i>"))
    assert "<b>Bob" not in html and "&lt;b&gt;Bob&lt;/b&gt;" in html and "&lt;i&gt;x&lt;/i&gt;" in html


# ------------------------------------------------------------------ filters


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (timedelta(seconds=59), "under a minute"),
        (timedelta(minutes=45), "45 min"),
        (timedelta(hours=3), "3 h"),
        (timedelta(hours=3, minutes=20, seconds=59), "3 h 20 min"),
        (timedelta(days=2, hours=4, minutes=10), "2 d 4 h"),
        (timedelta(days=1), "1 d"),
        (-timedelta(minutes=5), "5 min"),
    ],
)
def test_durations_read_like_a_person_would_say_them(value: timedelta, shown: str) -> None:
    assert duration(value) == shown


@pytest.mark.parametrize(
    ("moment", "zone", "shown"),
    [
        (datetime(2026, 12, 1, 13, 0, tzinfo=UTC), "Europe/Paris", "Tue 1 Dec 2026, 14:00 CET"),
        (datetime(2026, 7, 1, 13, 0, tzinfo=UTC), "Europe/Paris", "Wed 1 Jul 2026, 15:00 CEST"),
        (datetime(2026, 3, 8, 7, 30, tzinfo=UTC), "America/New_York", "Sun 8 Mar 2026, 03:30 EDT"),
        (datetime(2026, 12, 1, 13, 0, tzinfo=UTC), "America/Sao_Paulo", "Tue 1 Dec 2026, 10:00 UTC-03"),
        (datetime(2026, 12, 1, 13, 0, tzinfo=UTC), "UTC", "Tue 1 Dec 2026, 13:00 UTC"),
    ],
)
def test_deadlines_are_shown_on_the_teams_wall_clock(moment: datetime, zone: str, shown: str) -> None:
    assert local_time(moment, zone) == shown


def test_excerpt_collapses_blank_runs_and_cuts_long_lines() -> None:
    lines = excerpt("\n\nHello,\n\n\n\n" + "x" * 500 + "\nmore")
    assert lines[0] == "Hello," and lines[1] == ""
    assert len(lines[2]) <= 160 and lines[2].endswith("…")
    assert len(lines) == 3


@given(st.text(max_size=3000))
def test_excerpt_is_always_short(text: str) -> None:
    lines = excerpt(text)
    assert len(lines) <= 4
    assert all(len(line) <= 162 and "\n" not in line for line in lines)
    assert sum(len(line) for line in lines) <= 402


def test_a_snippet_is_the_first_line_collapsed_and_cut() -> None:
    assert snippet("\n\n  Hello\t there  \nsecond line") == "Hello there …"
    assert snippet("x" * 500) == "x" * 119 + "…"
    assert snippet("  \n ") is None and snippet(None) is None
