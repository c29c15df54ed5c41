"""The web console: the pages a support lead reads (the queue, a ticket with its timeline, contact and clocks,
quarantined email, dead letters, digests), served by the api function (`intake.handlers.console`).

This module is what the console's door and `intake serve`'s gateway share (paths, headers, the sign-in cookie, the
CSRF check), with nothing but the standard library; `pages` renders (Jinja2 templates, autoescaped: what
customers wrote is text, never markup, with our CSS and JS and htmx 2.0.11, 0BSD, from `static/`)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit

CONSOLE_PREFIX = "/console/"
LOGIN_PATH = "/console/login"
LOGOUT_PATH = "/console/logout"
STATIC_PREFIX = "/console/static/"
SESSION_COOKIE = "intake_session"
SESSION_MAX_AGE_S = 12 * 3600
# In AWS (`Settings.console_sign_in == "oidc"`): the OIDC sign-in (`intake.console.oidc`) and its cookies, both
# `__Host-` (Secure, Path=/, this host only: no other execute-api host or subdomain can set or shadow them)
SIGN_IN_PATH = "/console/sign-in"
CALLBACK_PATH = "/console/sign-in/callback"
OIDC_SESSION_COOKIE = "__Host-intake_session"  # the provider's ID token, until it expires
SIGN_IN_COOKIE = "__Host-intake_sign_in"  # a sign-in in progress: state, nonce, PKCE verifier, where to go after
SIGN_IN_MAX_AGE_S = 600
CLIENT_SECRET = "CONSOLE_CLIENT_SECRET"  # noqa: S105 - the secret's name (the stack's ConsoleClient; INTAKE_... locally)
# What a browser needs before it has signed in (or after): the sign-in and sign-out pages and our CSS and JS
OPEN_PATHS = frozenset({LOGIN_PATH, LOGOUT_PATH, SIGN_IN_PATH, CALLBACK_PATH})

# Every console page: only our own files, no inline script or style, never framed, never cached
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
# A digest shown in the console's frame: the email's own HTML (inline CSS), no script, framed by the console only
DIGEST_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; frame-ancestors 'self'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
# ----------------------------------------------------------------------------------------- sign-in and CSRF


def session_value(token: str) -> str:
    """The console cookie's value for an agent token: derived from it (the token itself never sits in a cookie)."""
    return hmac.new(token.encode(), b"intake console session", hashlib.sha256).hexdigest()


def session_cookie(token: str | None, secure: bool) -> str:
    """`Set-Cookie` for a signed-in browser (None: signed out). HttpOnly (no script reads it), SameSite=Strict
    (no other site's page sends it: the console's CSRF defence with the Origin check)."""
    value, age = (session_value(token), SESSION_MAX_AGE_S) if token else ("", 0)
    secure_flag = "; Secure" if secure else ""
    return f"{SESSION_COOKIE}={value}; Path=/; Max-Age={age}; HttpOnly; SameSite=Strict{secure_flag}"


def cookie(headers: Mapping[str, str], name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def same_origin(headers: Mapping[str, str]) -> bool:
    """A state-changing request came from a console page: its `Origin` (or, without one, `Sec-Fetch-Site`) says
    so. A request that says neither is refused: browsers send Origin with every form POST."""
    origin = headers.get("origin")
    if origin:
        return urlsplit(origin).netloc.lower() == headers.get("host", "").lower() and origin != "null"
    return headers.get("sec-fetch-site") == "same-origin"


def safe_next(raw: str | None) -> str:
    """Where to go after signing in: a path of ours only (never `//elsewhere` or `https://...`)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    return raw


def is_open(path: str) -> bool:
    """A console path served without a session: the sign-in and sign-out pages, our CSS and JS."""
    return path in OPEN_PATHS or path.startswith(STATIC_PREFIX)
