"""Figures as a person reads them: every number formatted once, here, for both the HTML and the text digest.

The templates (`notify/templates/digest.*`) only place these strings, so the two parts cannot disagree: each
figure shown in one is shown, written the same way, in the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from intake.digest.figures import Figures, LowScore, TicketLink, Times, Waiting, WindowFigures
from intake.digest.window import Window
from intake.notify.render import channel_name, duration, local_time, render
from intake.text import excerpt

BAR_BLOCKS = 20  # the longest bar of the text part, in characters
_PRIORITY_NAMES = {"urgent": "Urgent", "high": "High", "normal": "Normal", "low": "Low"}
NONE = "\u2013"  # an en dash: no value


def render_digest(figures: Figures, window: Window) -> tuple[str, str, str]:
    """Subject, text and HTML of the digest."""
    return render("digest", context(figures, window))


def context(figures: Figures, window: Window) -> dict[str, Any]:
    """The `digest` templates' context (see `intake.notify.render`)."""
    current, previous, change = figures.current, figures.previous, figures.change
    tz = figures.timezone
    previous_window = Window(
        window.period, tz, window.previous_start, window.previous_end, window.previous_start, window.previous_end
    )
    return {
        "team_name": figures.team_name,
        "period": figures.period,
        "period_name": "Daily" if figures.period == "daily" else "Weekly",
        "window_label": window.label,
        "previous_label": previous_window.label,
        "timezone": tz,
        "generated": local_time(figures.generated_at, tz),
        "empty": figures.empty,
        "summary": [
            _stat("New tickets", str(current.new_tickets), signed(change.new_tickets)),
            _stat("Open now", str(figures.backlog.open), None),
            _stat("Breaches", str(current.breaches), signed(change.breaches)),
            _stat("Near-breaches", str(current.near_breaches), signed(change.near_breaches)),
            _stat(
                "First response (median)",
                _seconds(current.first_response.median_s),
                signed_duration(change.first_response_median_s),
            ),
            _stat(
                "Resolution (median)",
                _seconds(current.resolution.median_s),
                signed_duration(change.resolution_median_s),
            ),
            _stat(
                "Satisfaction",
                _average(current.satisfaction.average),
                signed_float(change.satisfaction_average),
            ),
        ],
        "channels": _bars(
            {k: v for k, v in current.by_channel.items()},
            previous.by_channel,
            change.by_channel,
            channel_name,
        ),
        "priorities": _bars(
            current.by_priority, previous.by_priority, change.by_priority, lambda p: _PRIORITY_NAMES.get(p, p)
        ),
        "times": [
            _times(
                "First response", current.first_response, change.first_response_median_s, change.first_response_p90_s
            ),
            _times("Resolution", current.resolution, change.resolution_median_s, change.resolution_p90_s),
        ],
        "breached": [_link(t) for t in current.breached],
        "breaches": str(current.breaches),
        "near_breached": [_link(t) for t in current.near_breached],
        "near_breaches": str(current.near_breaches),
        "backlog": {
            "open": str(figures.backlog.open),
            "breached": str(figures.backlog.breached),
            "overdue": str(figures.backlog.overdue),
        },
        "oldest": [_waiting(w, tz) for w in figures.backlog.oldest],
        "satisfaction": _satisfaction(current, change.response_rate, change.satisfaction_average, tz),
        "previous": {
            "new_tickets": str(previous.new_tickets),
            "breaches": str(previous.breaches),
            "near_breaches": str(previous.near_breaches),
        },
    }


def signed(value: int | None) -> str:
    if value is None:
        return NONE
    return "±0" if value == 0 else f"{value:+d}"


def signed_duration(seconds: int | None) -> str:
    if seconds is None:
        return NONE
    if abs(seconds) < 60:
        return "±0"
    return ("+" if seconds > 0 else "-") + duration(timedelta(seconds=abs(seconds)))


def signed_float(value: float | None) -> str:
    if value is None:
        return NONE
    return "±0" if value == 0 else f"{value:+.2f}"


def signed_points(rate: float | None) -> str:
    if rate is None:
        return NONE
    points = round(rate * 100)
    return "±0 pts" if points == 0 else f"{points:+d} pts"


def percent(rate: float | None) -> str:
    return NONE if rate is None else f"{round(rate * 100)}%"


def _seconds(value: int | None) -> str:
    return NONE if value is None else duration(timedelta(seconds=value))


def _average(value: float | None) -> str:
    return NONE if value is None else f"{value:.2f} / 5"


def _stat(label: str, value: str, change: str | None) -> dict[str, Any]:
    return {"label": label, "value": value, "change": change}


def _bars(
    counts: Mapping[str, int], before: Mapping[str, int], change: Mapping[str, int], name: Any
) -> list[dict[str, Any]]:
    shown = [k for k in change if counts.get(k, 0) or before.get(k, 0)]
    top = max((counts.get(k, 0) for k in shown), default=0)
    bars = []
    for key in shown:
        count = counts.get(key, 0)
        share = count / top if top else 0
        bars.append(
            {
                "label": name(key),
                "count": str(count),
                "change": signed(change.get(key, 0)),
                "pct": round(100 * share),
                "blocks": "█" * round(BAR_BLOCKS * share) if count else "",
            }
        )
    return bars


def _times(label: str, times: Times, median_change: int | None, p90_change: int | None) -> dict[str, Any]:
    within = NONE
    if times.with_target:
        within = f"{times.within_target} of {times.with_target} ({times.within_pct}%)"
    return {
        "label": label,
        "median": _seconds(times.median_s),
        "p90": _seconds(times.p90_s),
        "median_change": signed_duration(median_change),
        "p90_change": signed_duration(p90_change),
        "measured": str(times.measured),
        "open": str(times.open),
        "within": within,
        "targets": ", ".join(times.targets) or "no target",
    }


def _link(ticket: TicketLink) -> dict[str, Any]:
    return {"reference": ticket.reference, "url": ticket.url, "subject": ticket.subject}


def _waiting(waiting: Waiting, tz: str) -> dict[str, Any]:
    return {
        **_link(waiting.ticket),
        "channel": channel_name(waiting.channel),
        "priority": _PRIORITY_NAMES.get(waiting.priority, waiting.priority),
        "waiting": duration(timedelta(seconds=waiting.waiting_s)),
        "since": local_time(waiting.last_inbound_at, tz),
        "due": local_time(waiting.next_due_at, tz) if waiting.next_due_at else None,
        "breached": waiting.breached,
    }


def _low(score: LowScore, tz: str) -> dict[str, Any]:
    return {
        **_link(score.ticket),
        "score": f"{score.score} / 5",
        "answered": local_time(score.answered_at, tz),
        "comment": excerpt(score.comment, lines=3, chars=300),
    }


def _satisfaction(current: WindowFigures, rate_change: float | None, average_change: float | None, tz: str) -> Any:
    known = current.satisfaction
    return {
        "known": bool(known.surveys_sent or known.responses),
        "average": _average(known.average),
        "average_change": signed_float(average_change),
        "responses": str(known.responses),
        "surveys_sent": str(known.surveys_sent),
        "response_rate": percent(known.response_rate),
        "rate_change": signed_points(rate_change),
        "low_scores": str(known.low_scores),
        "low": [_low(s, tz) for s in known.low],
    }
