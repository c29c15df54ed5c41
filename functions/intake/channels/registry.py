"""Every channel Intake has, one line each: the list the receiver, the stack, the schemas and the samples walk.

A line names the channel's module; the module's `CHANNEL` (`intake.channels.contract.Channel`) says the rest.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from importlib import import_module
from typing import Any

from intake.channels.contract import Channel, Route

MODULES = (
    "intake.channels.forms",
    "intake.channels.twilio",
    "intake.channels.whatsapp",
    "intake.channels.email",
    "intake.channels.sendgrid",
    "intake.channels.mailgun",
    "intake.channels.messenger",
    "intake.channels.instagram",
)


@cache
def channels() -> tuple[Channel, ...]:
    found: tuple[Channel, ...] = tuple(import_module(name).CHANNEL for name in MODULES)
    return found


def channel(name: str) -> Channel:
    for candidate in channels():
        if candidate.name == name:
            return candidate
    raise LookupError(f"no channel named {name!r}")


def routes() -> list[tuple[Channel, Route]]:
    return [(c, route) for c in channels() for route in c.routes]


def route_for(method: str, path: str) -> tuple[Channel, Route] | None:
    """The channel route a concrete request path matches (`/webhooks/forms/contact` -> the forms route)."""
    parts = path.rstrip("/").split("/")
    for c, route in routes():
        pattern = route.path.split("/")
        if route.method == method and len(pattern) == len(parts) and all(map(_matches, pattern, parts)):
            return c, route
    return None


def _matches(pattern: str, part: str) -> bool:
    return pattern == part or (pattern.startswith("{") and pattern.endswith("}"))


def kinds() -> dict[str, str]:
    """Every kind of conversation the channels make (`sms`, `messenger`, ...), in the registry's order, and how
    people name it."""
    return {kind: name for c in channels() for kind, name in c.kinds.items()}


def reply_window(kind: str) -> timedelta | None:
    """How long after the customer's last message a reply on this kind of conversation may be written freely; None:
    no limit."""
    return next((c.reply_windows[kind] for c in channels() if kind in c.reply_windows), None)


def sections() -> dict[str, Any]:
    """Each channel section of `intake.yaml` and its type."""
    return {c.section: c.section_type for c in channels() if c.section_type is not None}
