"""SLA policies and priority rules: which policy a ticket gets, what priority, and the timer plan of each
target (deadline, warnings, escalations), checked by examples and by properties over business calendars."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from intake.config import (
    Policy,
    PriorityRules,
    Sla,
    SlaPolicy,
    SlaTarget,
    SlaTargetName,
    Team,
    default_sla,
    describe,
)
from intake.model import Channel, Priority
from intake.policy import parse_policy
from intake.sla import BusinessCalendar, calendar_for
from intake.sla.policy import TimerPlan, explain, plan_timer, policy_for, priority_for, remaining_at, stamp
from tests.depth import examples
from tests.unit.test_business_time import MICROSECOND, NEW_YORK, PARIS, Scenario, at, business, scenarios

TEAM = {"support": {"name": "Customer Support", "timezone": PARIS}}


def sla_policy(**fields: Any) -> SlaPolicy:
    return SlaPolicy.model_validate({"name": "p", **fields})


def errors_of(**sections: Any) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        parse_policy({"teams": TEAM, **sections})
    return describe(raised.value)


@pytest.fixture(scope="module")
def support(policy: Policy) -> Team:
    return policy.teams["support"]


@pytest.fixture(scope="module")
def office(support: Team) -> BusinessCalendar:
    """The shipped team's calendar: Paris, Mon-Thu 09:00-12:30 13:30-18:00, Fri until 17:00, FR holidays."""
    return calendar_for(support)


# ---------------------------------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("channel", "priority", "expected"),
    [
        (Channel.PHONE, Priority.URGENT, "urgent"),
        (Channel.WHATSAPP, Priority.HIGH, "urgent"),
        (Channel.PHONE, Priority.NORMAL, "default"),
        (Channel.EMAIL, Priority.URGENT, "default"),
        (Channel.FORM, Priority.LOW, "default"),
    ],
)
def test_shipped_policies_match_channel_and_priority(
    policy: Policy, channel: Channel, priority: Priority, expected: str
) -> None:
    assert policy_for(policy.sla, "support", channel, priority).name == expected


def test_first_matching_policy_wins_and_each_list_left_out_means_any() -> None:
    sla = Sla.model_validate(
        {
            "policies": [
                {"name": "sales-urgent", "match": {"teams": ["sales"], "priorities": ["urgent"]}},
                {"name": "urgent", "match": {"priorities": ["urgent"]}},
                {"name": "sales", "match": {"teams": ["sales"]}},
                {"name": "fallback"},
            ]
        }
    )
    assert policy_for(sla, "sales", Channel.SMS, Priority.URGENT).name == "sales-urgent"
    assert policy_for(sla, "support", Channel.SMS, Priority.URGENT).name == "urgent"
    assert policy_for(sla, "sales", Channel.SMS, Priority.LOW).name == "sales"
    assert policy_for(sla, "support", Channel.SMS, Priority.LOW).name == "fallback"


def test_policy_without_sla_section_gets_the_documented_default() -> None:
    # Given a policy file with no `sla` section, Then one default policy: 8h business, 5d calendar, warn at 80%
    policy = parse_policy({"teams": TEAM})
    assert policy.sla == default_sla()
    (default,) = policy.sla.policies
    assert default.match is None
    assert default.first_response is not None and default.first_response.within == timedelta(hours=8)
    assert default.first_response.time == "business"
    assert default.resolution is not None and default.resolution.within == timedelta(days=5)
    assert default.resolution.time == "calendar"
    assert [warning.label for warning in default.warnings] == ["80%"]
    assert policy.priority == PriorityRules()


def test_sla_section_round_trips_as_the_file_writes_it(policy: Policy) -> None:
    dumped = policy.sla.model_dump(mode="json", exclude_defaults=True)
    assert dumped["policies"][0]["warnings"] == ["50%", "80%", "15m"]
    assert dumped["policies"][0]["first_response"] == {"within": "1h"}
    assert Sla.model_validate(dumped) == policy.sla


@pytest.mark.parametrize(
    ("sla", "expected"),
    [
        pytest.param(
            {"policies": [{"name": "a", "match": {"channels": ["phone"]}}]},
            "sla.policies: the last policy ('a') must have no `match`: it is the default for every other ticket",
            id="no-default",
        ),
        pytest.param(
            {"policies": [{"name": "a"}, {"name": "b"}]},
            "sla.policies: only the last policy may have no `match`: 'a' (policy 0) matches every ticket",
            id="default-not-last",
        ),
        pytest.param(
            {"policies": [{"name": "a", "match": {"channels": ["sms"]}}, {"name": "a"}]},
            "sla.policies: policy names must be unique: a used more than once",
            id="same-name",
        ),
        pytest.param(
            {"policies": [{"name": "a", "match": {"teams": ["sales"]}}, {"name": "b"}]},
            "sla.policies.0.match.teams: unknown team 'sales'",
            id="unknown-team",
        ),
        pytest.param({"policies": []}, "sla.policies: List should have at least 1 item", id="empty"),
        pytest.param(
            {"policies": [{"name": "a", "warnings": ["100%"]}]},
            "sla.policies.0.warnings.0: '100%': a warning's percent must be between 1% and 99%",
            id="percent-too-high",
        ),
        pytest.param(
            {"policies": [{"name": "a", "warnings": ["soon"]}]},
            "sla.policies.0.warnings.0: 'soon' is not a duration like 30m, 4h, 1h30m or 2d",
            id="warning-neither",
        ),
        pytest.param(
            {"policies": [{"name": "a", "warnings": ["0m"]}]},
            "sla.policies.0.warnings.0: '0m': a warning before the deadline must be longer than 0m",
            id="warning-zero",
        ),
        pytest.param(
            {"policies": [{"name": "a", "warnings": ["90m", "1h30m"]}]},
            "sla.policies.0.warnings: 1h30m listed more than once",
            id="warning-twice",
        ),
        pytest.param(
            {"policies": [{"name": "a", "first_response": {"within": "0m"}}]},
            "sla.policies.0.first_response.within: must be longer than 0m",
            id="zero-target",
        ),
        pytest.param(
            {"policies": [{"name": "a", "resolution": {"within": "1d", "time": "wall"}}]},
            "sla.policies.0.resolution.time: Input should be 'business' or 'calendar'",
            id="unknown-time",
        ),
        pytest.param(
            {"policies": [{"name": "a", "escalation": [{"after": "1h", "to": []}]}]},
            "sla.policies.0.escalation.0.to: List should have at least 1 item",
            id="nobody-to-escalate-to",
        ),
    ],
)
def test_bad_sla_section_names_the_path_and_the_reason(sla: dict[str, Any], expected: str) -> None:
    errors = errors_of(sla=sla)
    assert any(line.startswith(expected) for line in errors), errors


@pytest.mark.parametrize(
    ("priority", "expected"),
    [
        pytest.param(
            {"rules": [{"vip": True}]}, "priority.rules.0: vip: `priority` is required", id="missing-priority"
        ),
        pytest.param(
            {"rules": [{"form_field": True, "priority": "high"}]},
            "priority.rules.0: form_field keeps the form's own priority: leave `priority` out",
            id="form-field-with-priority",
        ),
        pytest.param(
            {"rules": [{"channels": ["sms"], "keywords": ["x"], "priority": "high"}]},
            "priority.rules.0: give exactly one of form_field, vip, channels, keywords (got channels, keywords)",
            id="two-conditions",
        ),
        pytest.param(
            {"rules": [{"priority": "high"}]},
            "priority.rules.0: give exactly one of form_field, vip, channels, keywords (got none)",
            id="no-condition",
        ),
        pytest.param(
            {"rules": [{"keywords": [], "priority": "high"}]},
            "priority.rules.0.keywords: List should have at least 1 item",
            id="no-keyword",
        ),
        pytest.param(
            {"vip_contacts": ["0612345678"]},
            "priority.vip_contacts.0: '0612345678' is neither an email address nor a phone number in international",
            id="national-phone",
        ),
    ],
)
def test_bad_priority_section_names_the_path_and_the_reason(priority: dict[str, Any], expected: str) -> None:
    errors = errors_of(priority=priority)
    assert any(line.startswith(expected) for line in errors), errors


# ---------------------------------------------------------------------------------------- priority


def rules(*items: dict[str, Any], vips: tuple[str, ...] = ()) -> PriorityRules:
    return PriorityRules.model_validate({"vip_contacts": list(vips), "rules": list(items)})


def test_vip_contacts_are_stored_normalized() -> None:
    assert rules(vips=("+33 6 12 34 56 78", "CEO@BigCustomer.example")).vip_contacts == [
        "+33612345678",
        "ceo@bigcustomer.example",
    ]


@pytest.mark.parametrize(
    "identity",
    [("phone", "+33612345678"), ("phone", "+33 6 12-34-56-78"), ("wa_id", "33612345678"), ("email", "CEO@Big.example")],
)
def test_vip_sender_gets_the_vip_priority_on_any_identity(identity: tuple[str, str]) -> None:
    vip = rules({"vip": True, "priority": "urgent"}, vips=("+33612345678", "ceo@big.example"))
    assert priority_for(vip, Channel.SMS, None, "hello", [identity], Priority.NORMAL) is Priority.URGENT


def test_other_senders_keep_their_priority_and_plus_tags_are_not_stripped() -> None:
    vip = rules({"vip": True, "priority": "urgent"}, vips=("ceo@big.example",))
    others = [("email", "ceo+news@big.example"), ("phone", "+33699999999"), ("email", "not an address")]
    assert priority_for(vip, Channel.EMAIL, None, "hello", others, Priority.LOW) is Priority.LOW


def test_form_field_keeps_a_form_submitters_choice_only_when_not_normal() -> None:
    form_first = rules({"form_field": True}, {"channels": ["form"], "priority": "low"})
    assert priority_for(form_first, Channel.FORM, None, "x", [], Priority.URGENT) is Priority.URGENT
    assert priority_for(form_first, Channel.FORM, None, "x", [], Priority.NORMAL) is Priority.LOW
    # a message names its channel as a string (any channel in the registry): "form" is the form channel
    assert priority_for(form_first, "form", None, "x", [], Priority.URGENT) is Priority.URGENT
    # another channel's own priority is not "a form field"
    assert priority_for(rules({"form_field": True}), Channel.EMAIL, None, "x", [], Priority.HIGH) is Priority.HIGH


def test_channel_rule_sets_the_priority_of_that_channel_only() -> None:
    phone = rules({"channels": ["phone", "whatsapp"], "priority": "high"})
    assert priority_for(phone, Channel.PHONE, None, "x", [], Priority.NORMAL) is Priority.HIGH
    assert priority_for(phone, Channel.WHATSAPP, None, "x", [], Priority.LOW) is Priority.HIGH
    assert priority_for(phone, Channel.SMS, None, "x", [], Priority.LOW) is Priority.LOW


@pytest.mark.parametrize(
    ("subject", "text", "hit"),
    [
        ("OUTAGE in Lyon", "", True),
        (None, "our site\n  DOWN since noon", True),
        ("Re: outage?", "thanks", True),
        ("outages report", "monthly", False),  # whole words only
        (None, "the website is down", False),  # "site down" is a phrase, not "website ... down"
        (None, "download fails", False),
    ],
)
def test_keywords_match_whole_words_in_any_case_in_subject_or_text(subject: str | None, text: str, hit: bool) -> None:
    keywords = rules({"keywords": ["outage", "site down"], "priority": "high"})
    expected = Priority.HIGH if hit else Priority.NORMAL
    assert priority_for(keywords, Channel.EMAIL, subject, text, [], Priority.NORMAL) is expected


def test_first_matching_rule_wins_and_no_match_keeps_the_given_priority(policy: Policy) -> None:
    # Given the shipped rules: form field, VIP → urgent, keywords → high, phone → high
    shipped = policy.priority
    vip_phone = [("phone", "+33612345678")]
    assert priority_for(shipped, Channel.FORM, None, "outage", vip_phone, Priority.LOW) is Priority.LOW
    assert priority_for(shipped, Channel.PHONE, None, "outage", vip_phone, Priority.NORMAL) is Priority.URGENT
    assert priority_for(shipped, Channel.EMAIL, "Site down!", "", [], Priority.NORMAL) is Priority.HIGH
    assert priority_for(shipped, Channel.PHONE, None, "call me", [], Priority.NORMAL) is Priority.HIGH
    assert priority_for(shipped, Channel.SMS, None, "hi", [], Priority.LOW) is Priority.LOW


# ---------------------------------------------------------------------------------------- timer plans


def paris(text: str) -> datetime:
    return at(PARIS, text).astimezone(UTC)


URGENT = sla_policy(
    first_response={"within": "1h"},
    resolution={"within": "3d", "time": "calendar"},
    warnings=["50%", "80%", "15m"],
    escalation=[{"after": "0m", "to": ["lead@example.com"]}, {"after": "1h", "to": ["boss@example.com"]}],
)


def test_first_response_skips_lunch_and_the_weekend(office: BusinessCalendar) -> None:
    # Given a call on Friday at 16:30 (Friday closes at 17:00), When the 1h first response is planned
    plan = plan_timer(URGENT, "first_response", office, paris("2026-03-06 16:30"), 1)
    # Then half an hour on Friday and half an hour on Monday morning
    assert plan is not None
    assert plan.due_at == paris("2026-03-09 09:30")
    assert plan.started_at == paris("2026-03-06 16:30") and plan.started_at.tzinfo is UTC
    assert (plan.policy, plan.time, plan.generation) == ("p", "business", 1)
    assert plan.within == plan.counted == timedelta(hours=1)
    # 50% left 30m (Friday's closing), 15m left at 09:15, 80% (12m left) at 09:18 — ordered by time
    assert plan.warnings == (
        ("50%", paris("2026-03-06 17:00")),
        ("15m", paris("2026-03-09 09:15")),
        ("80%", paris("2026-03-09 09:18")),
    )


def test_lunch_break_is_not_counted(office: BusinessCalendar) -> None:
    plan = plan_timer(URGENT, "first_response", office, paris("2026-03-10 12:00"), 1)
    assert plan is not None and plan.due_at == paris("2026-03-10 14:00")


def test_public_holiday_and_closed_date_are_skipped(office: BusinessCalendar) -> None:
    # Given Wednesday 23 December at 17:30, Then the 24th (closed date), 25th (Christmas) and the weekend go by
    plan = plan_timer(URGENT, "first_response", office, paris("2026-12-23 17:30"), 1)
    assert plan is not None and plan.due_at == paris("2026-12-28 09:30")


def test_calendar_time_is_elapsed_time_across_a_dst_change(office: BusinessCalendar) -> None:
    # Given Paris springs forward on Sunday 29 March 2026, When a 3d calendar-time resolution starts Friday 11:00
    plan = plan_timer(URGENT, "resolution", office, paris("2026-03-27 11:00"), 1)
    # Then 72 real hours later, which the clock reads as 12:00 on Monday
    assert plan is not None and plan.time == "calendar"
    assert plan.due_at == paris("2026-03-27 11:00") + timedelta(hours=72)
    assert plan.due_at.astimezone(ZoneInfo(PARIS)).hour == 12
    assert plan.warnings[0] == ("50%", paris("2026-03-27 11:00") + timedelta(hours=36))


def test_business_time_on_a_dst_day_counts_the_hours_that_really_exist() -> None:
    # Given a New York desk open Sundays 00:00-06:00: on 8 March 2026 the clock skips 02:00-03:00 (5 hours open)
    desk = business(NEW_YORK, hours={"sun": ["00:00-06:00"]})
    plan = plan_timer(
        sla_policy(first_response={"within": "5h"}), "first_response", desk, at(NEW_YORK, "2026-03-08 00:00"), 1
    )
    assert plan is not None and plan.due_at == at(NEW_YORK, "2026-03-08 06:00")


def test_missing_target_has_no_plan_and_unknown_target_is_refused(office: BusinessCalendar) -> None:
    start = paris("2026-03-09 10:00")
    assert plan_timer(URGENT, "next_response", office, start, 1) is None
    with pytest.raises(ValueError, match="unknown SLA target"):
        plan_timer(URGENT, "reply", office, start, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="generation"):
        plan_timer(URGENT, "first_response", office, start, 0)


def test_warnings_longer_than_the_target_are_not_planned(office: BusinessCalendar) -> None:
    policy = sla_policy(first_response={"within": "30m"}, warnings=["1h", "30m", "10m", "50%"])
    plan = plan_timer(policy, "first_response", office, paris("2026-03-09 10:00"), 1)
    assert plan is not None
    assert plan.warnings == (("50%", paris("2026-03-09 10:15")), ("10m", paris("2026-03-09 10:20")))


def test_escalation_levels_follow_the_breach_in_the_targets_time(office: BusinessCalendar) -> None:
    # Given a deadline at Friday's closing (17:00)
    plan = plan_timer(URGENT, "first_response", office, paris("2026-03-06 16:00"), 2)
    assert plan is not None and plan.due_at == paris("2026-03-06 17:00")
    # Then level 1 (0m) at the breach itself, not Monday's opening; level 2 one business hour later
    assert plan.escalations == (
        (1, paris("2026-03-06 17:00"), ("lead@example.com",)),
        (2, paris("2026-03-09 10:00"), ("boss@example.com",)),
    )
    # And in calendar time, plain hours
    resolution = plan_timer(URGENT, "resolution", office, paris("2026-03-06 16:00"), 1)
    assert resolution is not None
    assert [when for _, when, _ in resolution.escalations] == [
        resolution.due_at,
        resolution.due_at + timedelta(hours=1),
    ]


def test_resumed_timer_counts_only_what_was_left(office: BusinessCalendar) -> None:
    # Given a 1h first response started Monday 10:00 and paused (pending) at 10:40: 20 minutes left
    plan = plan_timer(URGENT, "first_response", office, paris("2026-03-09 10:00"), 1)
    assert plan is not None
    left = plan.remaining_at(office, paris("2026-03-09 10:40"))
    assert left == timedelta(minutes=20)
    # When the customer answers at 18:30 (closed) and the timer resumes
    resumed = plan_timer(URGENT, "first_response", office, paris("2026-03-09 18:30"), 2, remaining=left)
    # Then 20 business minutes from Tuesday's opening; 50% and 80% (30m, 12m left) keep their meaning
    assert resumed is not None
    assert resumed.due_at == paris("2026-03-10 09:20")
    assert resumed.counted == left and resumed.within == timedelta(hours=1)
    assert resumed.warnings == (("15m", paris("2026-03-10 09:05")), ("80%", paris("2026-03-10 09:08")))


def test_remaining_time_is_never_negative(office: BusinessCalendar) -> None:
    due = paris("2026-03-09 10:00")
    assert remaining_at(due, "business", office, paris("2026-03-09 11:00")) == timedelta(0)
    assert remaining_at(due, "calendar", office, paris("2026-03-09 11:00")) == timedelta(0)
    assert remaining_at(due, "calendar", office, paris("2026-03-08 10:00")) == timedelta(days=1)
    assert remaining_at(due, "business", office, paris("2026-03-06 16:00")) == timedelta(hours=2)


def test_execution_name_and_input_follow_the_contract(office: BusinessCalendar) -> None:
    plan = plan_timer(URGENT, "first_response", office, paris("2026-03-06 16:30"), 3)
    assert plan is not None
    ticket = "01JD0000000000000000000000"
    assert plan.execution_name(ticket) == f"{ticket}-first_response-3"
    # When planned at Friday 17:30, the 50% warning (Friday 17:00) is already past and left out
    assert plan.execution_input(ticket, now=paris("2026-03-06 17:30")) == {
        "ticket_id": ticket,
        "target": "first_response",
        "generation": 3,
        "generation_text": "3",
        "pk": f"TICKET#{ticket}",
        "sk": "SLA#first_response",
        "due_at": "2026-03-09T08:30:00Z",
        "warnings": [{"at": "2026-03-09T08:15:00Z", "label": "15m"}, {"at": "2026-03-09T08:18:00Z", "label": "80%"}],
        "escalations": [{"level": 1, "at": "2026-03-09T08:30:00Z"}, {"level": 2, "at": "2026-03-09T09:30:00Z"}],
    }
    assert len(plan.execution_input(ticket)["warnings"]) == 3


def test_timestamps_round_up_to_the_second_so_no_wait_ends_early() -> None:
    assert stamp(datetime(2026, 3, 9, 8, 30, tzinfo=UTC)) == "2026-03-09T08:30:00Z"
    assert stamp(datetime(2026, 3, 9, 8, 30, 0, 1, tzinfo=UTC)) == "2026-03-09T08:30:01Z"
    assert stamp(at(PARIS, "2026-03-09 09:30")) == "2026-03-09T08:30:00Z"


# ---------------------------------------------------------------------------------------- explain


def plans_of(policy: SlaPolicy, calendar: BusinessCalendar, start: datetime) -> list[TimerPlan]:
    targets: list[SlaTargetName] = ["first_response", "next_response", "resolution"]
    return [plan for target in targets if (plan := plan_timer(policy, target, calendar, start, 1)) is not None]


@pytest.mark.parametrize("lang", ["C.UTF-8", "fr_FR.UTF-8", "de_DE.UTF-8"])
def test_explain_names_holidays_in_english_whatever_the_locale(
    policy: Policy, support: Team, office: BusinessCalendar, lang: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # holidays names a day in the language LANG asks for, else the country's own: the explanation is English
    monkeypatch.setenv("LANG", lang)
    chosen = policy_for(policy.sla, "support", Channel.PHONE, Priority.HIGH)
    start = paris("2026-12-24 11:00")
    plans = plans_of(chosen, office, start)

    text = explain(chosen, plans, office, support, team_id="support", channel=Channel.PHONE, priority=Priority.HIGH)

    assert "2026-12-25 (Christmas Day)" in text and "Noël" not in text


def test_explain_shows_the_policy_calendar_and_arithmetic_in_the_teams_zone(
    policy: Policy, support: Team, office: BusinessCalendar
) -> None:
    chosen = policy_for(policy.sla, "support", Channel.PHONE, Priority.HIGH)
    start = paris("2026-12-24 11:00")
    text = explain(
        chosen,
        plans_of(chosen, office, start),
        office,
        support,
        team_id="support",
        channel=Channel.PHONE,
        priority=Priority.HIGH,
    )
    for figure in (
        "SLA policy 'urgent' for team support, channel phone, priority high",
        "channels phone, whatsapp; priorities urgent, high",
        "mon-thu 09:00-12:30, 13:30-18:00; fri 09:00-12:30, 13:30-17:00; sat-sun closed",
        "Europe/Paris",
        "public holidays of FR",
        "Closed dates: 2026-12-24",
        "first_response (generation 1): within 1h of business time, started Thu 2026-12-24 11:00 CET",
        "open Mon 2026-12-28 09:00 CET to 10:00 CET: 1h",
        "2026-12-25 (Christmas Day)",
        "Due Mon 2026-12-28 10:00 CET (2026-12-28T09:00:00Z)",
        "Warning 50% (30m left): Mon 2026-12-28 09:30 CET",
        "Warning 80% (12m left): Mon 2026-12-28 09:48 CET",
        "Warning 15m (15m left): Mon 2026-12-28 09:45 CET",
        "Escalation level 2: Mon 2026-12-28 12:00 CET, to head-of-support@example.com",
        "resolution (generation 1): within 3d of calendar time",
        "Thu 2026-12-24 11:00 CET + 3d = Sun 2026-12-27 11:00 CET",
    ):
        assert figure in text, figure


def test_explain_names_the_default_and_a_resumed_timer(support: Team, office: BusinessCalendar) -> None:
    default = default_sla().policies[-1]
    resumed = plan_timer(default, "first_response", office, paris("2026-07-01 10:00"), 2, remaining=timedelta(hours=1))
    assert resumed is not None
    text = explain(default, [resumed], office, support, channel=Channel.EMAIL)
    assert "SLA policy 'default' for channel email: the default, no other policy matched." in text
    assert "within 1h left of 8h of business time, resumed Wed 2026-07-01 10:00 CEST" in text
    assert "Not planned, already past at the start: warning 80%" in text


def test_explain_shows_a_deadline_with_a_fraction_of_a_second_as_one_instant(
    support: Team, office: BusinessCalendar
) -> None:
    # Given a clock started at 10:00:00.400 on a wall-clock policy: its deadline has a fraction of a second
    default = (
        default_sla().policies[-1].model_copy(update={"first_response": SlaTarget.model_validate({"within": "1h"})})
    )
    started = paris("2026-07-01 10:00") + timedelta(milliseconds=400)
    plan = plan_timer(default, "first_response", office, started, 1)
    assert plan is not None and plan.due_at.microsecond

    # Then its local time and its UTC stamp name the same second (rounded up, never before the deadline)
    text = explain(default, [plan], office, support, channel=Channel.EMAIL)
    assert "Due Wed 2026-07-01 11:00:01 CEST (2026-07-01T09:00:01Z)" in text


# ---------------------------------------------------------------------------------------- properties

minutes = st.integers(1, 3 * 24 * 60).map(lambda m: timedelta(minutes=m))
instants = st.integers(0, 4 * 24 * 3600 * 10**6).map(lambda us: timedelta(microseconds=us))
warning_specs = st.lists(
    st.one_of(st.integers(1, 99).map(lambda p: f"{p}%"), st.integers(1, 600).map(lambda m: f"{m}m")),
    max_size=4,
    unique=True,
)


@st.composite
def policies(draw: st.DrawFn) -> SlaPolicy:
    afters = draw(st.lists(st.integers(0, 600).map(lambda m: f"{m}m"), max_size=3))
    return sla_policy(
        first_response={"within": draw(minutes), "time": draw(st.sampled_from(["business", "calendar"]))},
        warnings=draw(warning_specs),
        escalation=[{"after": after, "to": ["lead@example.com"]} for after in afters],
    )


Advance = Callable[[datetime, timedelta], datetime]


def advance_of(plan: TimerPlan, calendar: BusinessCalendar) -> Advance:
    return calendar.add if plan.time == "business" else (lambda start, d: start + d)


@settings(max_examples=examples(80), deadline=None)
@given(scenarios(), policies(), instants)
def test_plan_never_falls_in_closed_time_and_warnings_come_before_the_deadline(
    scenario: Scenario, policy: SlaPolicy, offset: timedelta
) -> None:
    calendar, start = scenario.business, scenario.start + offset
    plan = plan_timer(policy, "first_response", calendar, start, 1)
    assert plan is not None
    if plan.time == "business":
        assert calendar.is_open(plan.due_at - MICROSECOND)
        assert calendar.between(start, plan.due_at) == plan.within
        assert all(calendar.is_open(when - MICROSECOND) for _, when in plan.warnings)
    else:
        assert plan.due_at == start + plan.within
    times = [when for _, when in plan.warnings]
    assert times == sorted(times)
    assert all(start < when < plan.due_at for when in times)
    escalations = [when for _, when, _ in plan.escalations]
    assert escalations == sorted(escalations) and all(when >= plan.due_at for when in escalations)
    assert [level for level, _, _ in plan.escalations] == list(range(1, len(escalations) + 1))


@settings(max_examples=examples(80), deadline=None)
@given(scenarios(), policies(), instants, instants, instants)
def test_resuming_after_a_pause_at_any_instant_counts_exactly_what_was_left(
    scenario: Scenario, policy: SlaPolicy, offset: timedelta, paused_after: timedelta, pause: timedelta
) -> None:
    # Given a timer started at any instant, paused at any later instant and resumed after any pause
    calendar, start = scenario.business, scenario.start + offset
    plan = plan_timer(policy, "first_response", calendar, start, 1)
    assert plan is not None
    paused_at = start + paused_after
    left = plan.remaining_at(calendar, paused_at)
    resumed_at = paused_at + pause
    resumed = plan_timer(policy, "first_response", calendar, resumed_at, 2, remaining=left)
    # Then the new deadline is the time left, added from the resumption
    assert resumed is not None and resumed.generation == 2
    assert resumed.due_at == advance_of(plan, calendar)(resumed_at, left)
    assert left <= plan.within
    # And resuming at once, before the deadline, keeps the deadline and the warnings still ahead
    if left > timedelta(0):
        again = plan_timer(policy, "first_response", calendar, paused_at, 2, remaining=left)
        assert again is not None and again.due_at == plan.due_at
        assert again.warnings == tuple((label, when) for label, when in plan.warnings if when > paused_at)
