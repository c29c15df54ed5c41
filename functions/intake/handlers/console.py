"""The web console's routes (`GET /`, `/console/...`): HTML pages over the same domain calls as the JSON API.

Included in the api function's resolver (`api.app.include_router(router)`), so it runs wherever that runs: behind
`intake serve`'s agent token (`intake.local.gateway`: bearer or the console's session cookie), and in AWS, when the
policy file sets `api.jwt.console`, with no gateway authorizer (a browser sends no bearer header): every page but
the sign-in's checks the OIDC session here (`_require_session`, `intake.console.oidc`). Every POST must come from a
console page (`Origin`, with the SameSite session cookie: the CSRF defence) and answers with a redirect (POST,
redirect, GET). Errors are pages here, not problem+json: each route catches what it can raise and answers with the
status `problems` maps; a POST without a session is the one 401 problem+json (nothing to show a script)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, ParamSpec
from urllib.parse import parse_qs, quote, urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from pydantic import ValidationError

from intake import console, runtime
from intake.archive import ArchiveKeyError
from intake.channels import registry
from intake.config import ConfigError
from intake.errors import FieldInvalidError
from intake.handlers import imported
from intake.handlers.problems import PROBLEMS, problem
from intake.model import AgentAction, Contact, Priority, QuarantineStatus, Status, Ticket, TicketDetail
from intake.observability import logger
from intake.store import ContactNotFoundError

if TYPE_CHECKING:
    from intake.console.oidc import Client, Session

router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves its __init__ unannotated
HTML = "text/html; charset=utf-8"
MAX_COOKIE_CHARS = 3900  # browsers keep 4096 bytes of a cookie, its name and attributes included
QUEUE_ROWS = 50  # the most urgent, as a lead reads them; the JSON API pages through the rest
POLL_S = 5
P = ParamSpec("P")


class PageNotFoundError(Exception):
    """A file, digest or page the console does not have."""


class OriginForbiddenError(Exception):
    """A POST that did not come from a console page (another site's form, or a client that says no origin)."""


class SignInRequiredError(Exception):
    """A console request without a valid session (in AWS: none, or an ID token that expired or is not valid)."""


class SignInFailedError(Exception):
    """A sign-in that did not complete: the provider refused, was unreachable, or the browser's flow was not ours."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _as_pages(route: Callable[P, Response[Any]]) -> Callable[P, Response[Any]]:
    """Our errors as pages, with the status `problems.PROBLEMS` gives each type (no problem+json for browsers)."""

    @wraps(route)
    def answer(*args: P.args, **kwargs: P.kwargs) -> Response[Any]:
        try:
            _require_session()
            return route(*args, **kwargs)
        except SignInRequiredError:
            return _to_sign_in()
        except SignInFailedError as error:
            return _error(error.status, "Not signed in", error.detail, sign_in=True)
        except OriginForbiddenError:
            logger.info("console request refused", extra={"reason": "origin"})
            return _error(403, "Refused", "This form must be sent from the console's own pages.")
        except PageNotFoundError:
            return _error(404, "Not found", "There is nothing here.")
        except tuple(PROBLEMS) as error:
            status, kind, title = next(v for t, v in PROBLEMS.items() if isinstance(error, t))
            logger.info("console request rejected", extra={"problem": kind, "status": status})
            return _error(status, title, str(error) if status < 500 else "Try again shortly.")

    return answer


# ------------------------------------------------------------------------------------------------ the queue


@router.get("/")
@_as_pages
def queue_page() -> Response[Any]:
    filters = _filters()
    return _page(
        "queue.html", **filters, **_queue(filters), teams=list(runtime.policy().teams), channels=list(registry.kinds())
    )


@router.get("/console/queue")
@_as_pages
def queue_fragment() -> Response[Any]:
    """The queue's table alone: what the page polls every POLL_S seconds (htmx), with the same filters."""
    from intake.console import pages

    filters = _filters()
    return _html(200, pages.render("_queue.html", **filters, **_queue(filters)))


def _filters() -> dict[str, str]:
    from intake.console import pages

    query = _query()
    team, channel, status = query.get("team", ""), query.get("channel", ""), query.get("status", "")
    if team and team not in runtime.policy().teams:
        raise FieldInvalidError("team", f"unknown team; known: {', '.join(runtime.policy().teams)}")
    if channel and channel not in registry.kinds():
        raise FieldInvalidError("channel", f"must be one of {', '.join(registry.kinds())}")
    if status not in pages.STATUS_CHOICES:
        raise FieldInvalidError("status", f"must be one of {', '.join(s for s in pages.STATUS_CHOICES if s)}")
    return {"team": team, "channel": channel, "status": status}


def _queue(filters: dict[str, str]) -> dict[str, Any]:
    """Open and pending tickets the most urgent first (the queue index); or, for a closed status, the newest."""
    from intake.console import pages

    store = runtime.store()
    teams = [filters["team"]] if filters["team"] else list(runtime.policy().teams)
    wanted = filters["status"]
    if wanted in ("resolved", "closed"):
        channel = filters["channel"] or None
        tickets = store.list_tickets(teams, status=Status(wanted), channel=channel, limit=QUEUE_ROWS).items
    else:
        tickets, cursor = [], None
        for _ in range(10):  # filtered after reading: a few pages at most
            page = store.queue(teams, limit=100, cursor=cursor)
            tickets += [t for t in page.items if _wanted(t, filters)]
            cursor = page.next
            if cursor is None or len(tickets) >= QUEUE_ROWS:
                break
        tickets = tickets[:QUEUE_ROWS]
    # A ticket carries who wrote and its first line; tickets opened before it did are read as they were
    contacts: dict[str, Contact | None] = {}
    for ticket in tickets:
        if ticket.customer is None and ticket.contact_id not in contacts:
            contacts[ticket.contact_id] = store.contact(ticket.contact_id)
    first_lines = {
        t.id: pages.first_line(store.ticket_detail(t.id).messages) for t in tickets if not (t.subject or t.snippet)
    }
    now = runtime.utc_now()
    return {
        "rows": pages.queue_rows(tickets, contacts, first_lines, now),
        "query": pages.query_string(**filters),
        "poll_s": POLL_S,
    }


def _wanted(ticket: Ticket, filters: dict[str, str]) -> bool:
    channel, status = filters["channel"], filters["status"]
    return (not channel or ticket.channel == channel) and (not status or ticket.status.value == status)


# ------------------------------------------------------------------------------------------------- a ticket


@router.get("/console/tickets/<ticket_id>")
@_as_pages
def ticket_page(ticket_id: str) -> Response[Any]:
    from intake.console import pages

    store = runtime.store()
    detail = store.ticket_detail(_ticket_id(ticket_id))
    try:
        customer = store.contact_detail(detail.contact_id)
    except ContactNotFoundError:
        customer = None
    tracker = runtime.tracker()
    now = runtime.utc_now()
    query = _query()
    return _page(
        "ticket.html",
        ticket=detail,
        timezone=runtime.policy().teams[detail.team].timezone,
        entries=pages.timeline(detail.messages, detail.events),
        shown=pages.attachment_view,
        facts=pages.event_facts,
        customer=customer,
        contact_label=pages.contact_label,
        clocks=pages.clocks(detail.sla, now),
        explanation=tracker.explain(detail.id),
        due=pages.countdown(detail.next_due_at, now),
        priorities=[p.value for p in Priority],
        reply_key=uuid.uuid4().hex,  # the reply form's Idempotency-Key: sent twice, it is one reply
        reply_templates=_reply_templates(detail),
        done=query.get("done", ""),
        now=now,
    )


def _reply_templates(detail: TicketDetail) -> list[str]:
    """WhatsApp Cloud API conversations: the approved templates, the only replies once its 24-hour window closed."""
    whatsapp = runtime.policy().section("whatsapp")
    if whatsapp is None or not any(m.provider == "whatsapp" for m in detail.messages):  # Twilio's: no templates
        return []
    return sorted(whatsapp.templates)


@router.post("/console/tickets/<ticket_id>/reply")
@_as_pages
def reply(ticket_id: str) -> Response[Any]:
    """The reply form: the same `accept` as `POST /tickets/{id}/replies`, keyed by the form's one-time key (a form
    sent twice, by a double click or a reload, is one reply), then back to the ticket."""
    from intake.replies import ReplyRequest

    _require_same_origin()
    form = _form()
    fields = {"text": form.get("text", ""), "by": form.get("by", "").strip() or _signed_in_as()}
    if template := form.get("template", "").strip():
        fields["template"] = template
    try:
        request = ReplyRequest.model_validate(fields)
    except ValidationError as error:
        raise _field_error(error) from None
    accepted = runtime.accept_reply(_ticket_id(ticket_id), request, form.get("key", "").strip()[:255] or None)
    logger.info("reply queued", extra={"ticket_id": accepted.message.ticket_id, "via": "console"})
    return _see_other(f"/console/tickets/{accepted.message.ticket_id}?done=reply_queued")


@router.post("/console/tickets/<ticket_id>/actions")
@_as_pages
def act(ticket_id: str) -> Response[Any]:
    """One of the agent's forms: the same `Tracker.act` as `POST /tickets/{id}/events`, then back to the ticket."""
    _require_same_origin()
    form = _form()
    fields = {name: form.get(name, "").strip() or None for name in ("type", "note", "assignee", "priority")}
    by = form.get("by", "").strip() or _signed_in_as()
    try:
        action = AgentAction.model_validate({**fields, "by": by})
    except ValidationError as error:
        raise _field_error(error) from None
    detail = runtime.tracker().act(_ticket_id(ticket_id), action, runtime.utc_now())
    logger.info("agent action", extra={"ticket_id": detail.id, "action": action.type, "via": "console"})
    return _see_other(f"/console/tickets/{detail.id}?done={action.type}")


@router.get("/console/tickets/<ticket_id>/files/<message>/<index>")
@_as_pages
def attachment(ticket_id: str, message: str, index: str) -> Response[Any]:
    """An archived attachment: pictures and sound in place, anything else as a download (`pages.download_headers`)."""
    from intake.console import pages

    detail = runtime.store().ticket_detail(_ticket_id(ticket_id))
    if not (message.isdigit() and index.isdigit()) or int(message) >= len(detail.messages):
        raise PageNotFoundError(message)
    files = detail.messages[int(message)].attachments
    if int(index) >= len(files) or not files[int(index)].s3_key:
        raise PageNotFoundError(index)
    chosen = files[int(index)]
    try:
        body = runtime.archive().get(chosen.s3_key or "")
    except ArchiveKeyError:
        raise PageNotFoundError(index) from None
    headers = pages.download_headers(chosen)
    return Response(200, headers.pop("Content-Type"), body, headers=headers)


def _ticket_id(given: str) -> str:
    return runtime.store().ticket_id_of(given)


# ------------------------------------------------------------------------------- quarantine, failures, digests


@router.get("/console/quarantine")
@_as_pages
def quarantine_page() -> Response[Any]:
    status = QuarantineStatus.RELEASED if _query().get("status") == "released" else QuarantineStatus.HELD
    held = runtime.store().list_quarantine(status)
    return _page("quarantine.html", items=held, status=status.value, done=_query().get("done", ""))


@router.post("/console/quarantine/<quarantine_id>/release")
@_as_pages
def release(quarantine_id: str) -> Response[Any]:
    """The same release as `POST /quarantine/{id}/release`: the email becomes a ticket (or joins its thread)."""
    from intake.emails import release as release_email
    from intake.ids import new_id

    _require_same_origin()
    now = runtime.utc_now()
    stores = runtime.email_stores()
    released, result = release_email(runtime.store(), stores, quarantine_id, runtime.policy(), new_id, now)
    if result is not None:
        runtime.tracker().after_ingest(result, now)
    logger.info("quarantined email released", extra={"quarantine_id": quarantine_id, "ticket_id": released.ticket_id})
    return _see_other(f"/console/quarantine?done={quote(quarantine_id)}")


@router.get("/console/failures")
@_as_pages
def failures_page() -> Response[Any]:
    from intake.failures import dead_lettered

    failures = dead_lettered(runtime.dead_letter_queues(), runtime.store())
    return _page("failures.html", failures=failures, done=_query().get("done", ""))


@router.post("/console/failures/<failure_id>/replay")
@_as_pages
def replay(failure_id: str) -> Response[Any]:
    """The same replay as `POST /failures/{id}/replay`: the dead letter goes back to its queue."""
    from intake.failures import replay as replay_failure

    _require_same_origin()
    queue = replay_failure(runtime.dead_letter_queues(), failure_id)
    logger.info("dead letter replayed", extra={"sqs_message_id": failure_id, "queue": queue, "via": "console"})
    return _see_other(f"/console/failures?done={quote(failure_id)}")


@router.get("/console/digests")
@_as_pages
def digests_page() -> Response[Any]:
    """Each team's latest digests (the last complete window of each period it has, else the daily one)."""
    shown = []
    for team_id, team in runtime.policy().teams.items():
        periods = [p for p in ("daily", "weekly") if getattr(team.digests, p) is not None] or ["daily"]
        shown += [(team_id, team.name, period) for period in periods]
    return _page("digests.html", digests=shown)


@router.get("/console/digests/<team>/<period>")
@_as_pages
def digest_frame(team: str, period: str) -> Response[Any]:
    """A team's digest as its email's HTML (the `GET /digests/{team}/{period}` preview), its ticket links into the
    console, for the digests page's frame."""
    from intake.digest import PERIODS
    from intake.digest.publish import prepare

    policy = runtime.policy()
    if team not in policy.teams or period not in PERIODS:
        raise PageNotFoundError(f"{team}/{period}")
    links = policy.notifications.model_copy(update={"ticket_url": "/console/tickets/{ticket_id}"})
    here = policy.model_copy(update={"notifications": links})
    digest = prepare(runtime.store(), here, team, period, None, base_url="", now=runtime.utc_now())
    page = digest.html.replace("<head>", '<head><base target="_top">', 1)
    return Response(200, HTML, page, headers=console.DIGEST_HEADERS)


# ------------------------------------------------------------------------------------------- sign-in, files


@router.get("/console/login")
@_as_pages
def login_page() -> Response[Any]:
    """The form `intake serve --agent-token` asks a browser for once (the local gateway checks it and sets the
    session cookie); in AWS, a link to the OIDC provider's sign-in (and where its sign-out comes back to)."""
    query = _query()
    oidc = runtime.settings().console_sign_in == "oidc"
    after = console.safe_next(query.get("next"))
    return _page(
        "login.html",
        next=after,
        failed=bool(query.get("failed")),
        oidc=oidc,
        sign_in=f"{console.SIGN_IN_PATH}?next={quote(after, safe='')}",
    )


@router.get(console.SIGN_IN_PATH)
@_as_pages
def sign_in() -> Response[Any]:
    """In AWS: off to the provider's authorization endpoint (code flow, PKCE), the flow remembered in a cookie."""
    from intake.console import oidc

    try:
        location, flow = oidc.start(_client(), _after_sign_in(_query().get("next")))
    except oidc.ProviderUnavailableError as error:
        logger.warning("console sign-in unavailable", extra={"reason": str(error)})
        raise SignInFailedError(502, "The sign-in provider cannot be reached. Try again shortly.") from None
    flow_cookie = _cookie(console.SIGN_IN_COOKIE, flow.cookie_value(), console.SIGN_IN_MAX_AGE_S)
    return Response(303, HTML, "", headers={"Location": location, **console.PAGE_HEADERS}, cookies=[flow_cookie])


@router.get(console.CALLBACK_PATH)
@_as_pages
def signed_in() -> Response[Any]:
    """Back from the provider: the code exchanged (with the PKCE verifier), the ID token checked (signature,
    issuer, audience, expiry, this flow's nonce) and kept as the session cookie until it expires; then the page
    first asked for. SameSite=Lax: sent when a person follows a link to the console (a digest's, an email's)."""
    from intake.console import oidc

    client = _client(with_secret=True)
    try:
        flow = oidc.Flow.from_cookie(_cookie_value(console.SIGN_IN_COOKIE))
        session = oidc.finish(client, flow, _query())
    except oidc.SignInRefusedError as error:
        logger.info("console sign-in refused", extra={"reason": str(error)})
        raise SignInFailedError(401, "The sign-in did not complete. Sign in again.") from None
    except oidc.ProviderUnavailableError as error:
        logger.warning("console sign-in unavailable", extra={"reason": str(error)})
        raise SignInFailedError(502, "The sign-in provider cannot be reached. Try again shortly.") from None
    if len(session.token) > MAX_COOKIE_CHARS:
        logger.warning("console sign-in refused", extra={"reason": "ID token too large", "chars": len(session.token)})
        raise SignInFailedError(
            500, "The provider's ID token is too large for a cookie: ask it for fewer claims (api.jwt.console.scopes)."
        )
    lifetime = session.expires_at - int(runtime.utc_now().timestamp())
    cookies = [
        _cookie(console.OIDC_SESSION_COOKIE, session.token, lifetime),
        _cookie(console.SIGN_IN_COOKIE, "", 0),
    ]
    logger.info("console signed in", extra={"lifetime_s": lifetime})
    after = _after_sign_in(flow.next)  # ours, as the sign-in set it; checked again all the same
    return Response(303, HTML, "", headers={"Location": after, **console.PAGE_HEADERS}, cookies=cookies)


@router.post(console.LOGOUT_PATH)
@_as_pages
def sign_out() -> Response[Any]:
    """In AWS: the session cookie forgotten, then the provider's own sign-out when it has one (back to the sign-in
    page), else that page. (`intake serve`'s gateway answers this path itself.)"""
    from intake.console import oidc

    _require_same_origin()
    client = _client()
    back = runtime.settings().public_base_url.rstrip("/") + console.LOGIN_PATH
    try:
        location = oidc.sign_out_url(client, back) or f"{console.LOGIN_PATH}?signed_out=1"
    except oidc.ProviderUnavailableError:
        location = f"{console.LOGIN_PATH}?signed_out=1"
    cookies = [_cookie(console.OIDC_SESSION_COOKIE, "", 0)]
    return Response(303, HTML, "", headers={"Location": location, **console.PAGE_HEADERS}, cookies=cookies)


@router.get("/console/static/<name>")
@_as_pages
def static(name: str) -> Response[Any]:
    """Our CSS and JS and htmx: the same bytes for a year at each URL (`console.static_url` adds their hash)."""
    from intake.console import pages

    try:
        body = pages.static_file(name)
    except KeyError:
        raise PageNotFoundError(name) from None
    headers = {"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"}
    return Response(200, pages.STATIC_TYPES[name], body.decode(), headers=headers)


# ------------------------------------------------------------------------------------------------- answers


def _field_error(error: ValidationError) -> FieldInvalidError:
    """A form's first invalid field, named (a model-wide rule says which field in its message: `text: ...`)."""
    first = error.errors()[0]
    if first["loc"]:
        return FieldInvalidError(str(first["loc"][0]), first["msg"])
    field, _, why = str(first.get("ctx", {}).get("error", first["msg"])).partition(": ")
    return FieldInvalidError(field if why else "(form)", why or field)


def _query() -> dict[str, str]:
    return dict(router.current_event.query_string_parameters or {})


def _form() -> dict[str, str]:
    """The POSTed form (application/x-www-form-urlencoded), first value of each field."""
    raw = router.current_event.decoded_body or ""
    return {name: values[0] for name, values in parse_qs(raw, keep_blank_values=True).items()}


def _require_session() -> None:
    """In AWS every console page but the sign-in's needs the provider's ID token in the session cookie, checked
    here: the gateway's JWT authorizer reads a bearer header, which a browser does not send. Locally the gateway
    in front has checked the agent token already."""
    if runtime.settings().console_sign_in != "oidc" or console.is_open(router.current_event.path):
        return
    from intake.console import oidc

    token = _cookie_value(console.OIDC_SESSION_COOKIE)
    if not token:
        raise SignInRequiredError
    try:
        session = oidc.verify(_client(), token)
    except oidc.SignInRefusedError as error:
        logger.info("console session refused", extra={"reason": str(error)})
        raise SignInRequiredError from None
    except oidc.ProviderUnavailableError as error:
        logger.warning("console sign-in unavailable", extra={"reason": str(error)})
        raise SignInFailedError(502, "The sign-in provider cannot be reached. Try again shortly.") from None
    router.context["console_session"] = session  # Powertools clears it after each request


def _session() -> Session | None:
    """The signed-in person (AWS), as `_require_session` found them for this request; None locally."""
    session: Session | None = router.context.get("console_session")
    return session


def _after_sign_in(raw: str | None) -> str:
    """Where the callback sends the browser: a page of ours, never the sign-in's own pages (a loop)."""
    after = console.safe_next(raw)
    return "/" if urlsplit(after).path in console.OPEN_PATHS else after


def _client(*, with_secret: bool = False) -> Client:
    """This deployment as the policy file's OIDC client; its secret (if any) read only to exchange a code."""
    from intake.console import oidc

    if runtime.settings().console_sign_in != "oidc":
        raise PageNotFoundError("sign-in")  # `intake serve`: its gateway signs people in
    jwt = runtime.policy().api.jwt
    if jwt is None or jwt.console is None:
        raise ConfigError("policy", ["api.jwt.console: required where INTAKE_CONSOLE_SIGN_IN is oidc"])
    redirect_uri = runtime.settings().public_base_url.rstrip("/") + console.CALLBACK_PATH
    secret = runtime.secrets().get(console.CLIENT_SECRET) if with_secret else None
    return oidc.Client(jwt.issuer, jwt.console, redirect_uri, secret)


def _to_sign_in() -> Response[Any]:
    """No session: a page goes to the sign-in (htmx, which polls, with `HX-Redirect` to it, back to its page after);
    a form's POST is refused (401 problem+json), its content would be lost in the round trip anyway."""
    event = router.current_event
    assert isinstance(event, APIGatewayProxyEventV2)
    headers = {k.lower(): v for k, v in (event.headers or {}).items()}
    if event.http_method not in ("GET", "HEAD"):
        logger.info("console request refused", extra={"reason": "signed out"})
        instance = str(logger.get_correlation_id() or event.request_context.request_id)
        detail = f"sign in at {console.SIGN_IN_PATH} first"
        return problem(401, "sign-in-required", "Sign in to the console first", detail, instance)
    if headers.get("hx-request") == "true":
        page = urlsplit(headers.get("hx-current-url", "/"))
        back = console.safe_next(page.path + (f"?{page.query}" if page.query else ""))
        login = f"{console.SIGN_IN_PATH}?next={quote(back, safe='')}"
        return Response(401, HTML, "", headers={"HX-Redirect": login, **console.PAGE_HEADERS})
    query = event.raw_query_string
    back = console.safe_next(event.path + (f"?{query}" if query else ""))
    location = f"{console.SIGN_IN_PATH}?next={quote(back, safe='')}"
    return Response(303, HTML, "", headers={"Location": location, **console.PAGE_HEADERS})


def _cookie_value(name: str) -> str | None:
    """A cookie the browser sent (API Gateway's HTTP API passes them as `cookies`, not as a header)."""
    event = router.current_event
    sent = "; ".join([*(event.raw_event.get("cookies") or []), (event.headers or {}).get("cookie", "")])
    return console.cookie({"cookie": sent}, name)


def _cookie(name: str, value: str, max_age: int) -> Cookie:
    """An AWS console cookie: `__Host-` (Secure, Path=/), HttpOnly, SameSite=Lax; max_age 0 forgets it."""
    return Cookie(name, value, path="/", secure=True, http_only=True, max_age=max_age, same_site=SameSite.LAX_MODE)


def _require_same_origin() -> None:
    headers = {k.lower(): v for k, v in (router.current_event.headers or {}).items()}
    if not console.same_origin(headers):
        raise OriginForbiddenError


def _signed_in_as() -> str:
    """Who acts, when the form does not say: in AWS the signed-in person (their email first), else `console`."""
    session = _session()
    return session.name if session is not None else "console"


def _shown_as() -> str | None:
    """Whom the page header names, with its sign-out button: the signed-in person in AWS; locally no one."""
    session = _session()
    return session.name if session is not None else None


def _page(template: str, **context: Any) -> Response[Any]:
    from intake.console import pages

    return _html(200, pages.render(template, signed_in=_shown_as(), **context))


def _html(status: int, body: str) -> Response[Any]:
    return Response(status, HTML, body, headers=console.PAGE_HEADERS)


def _error(status: int, title: str, detail: str, *, sign_in: bool = False) -> Response[Any]:
    from intake.console import pages

    again = console.SIGN_IN_PATH if sign_in else None
    context = {"status": status, "title": title, "detail": detail, "sign_in": again}
    return _html(status, pages.render("error.html", signed_in=_shown_as(), **context))


def _see_other(location: str) -> Response[Any]:
    return Response(303, HTML, "", headers={"Location": location, **console.PAGE_HEADERS})


imported()
