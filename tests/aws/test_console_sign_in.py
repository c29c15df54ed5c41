"""The console's sign-in in AWS: the api function runs OIDC's code flow (PKCE, state, nonce) with a real provider
over HTTPS (`oidc_provider`), keeps its ID token as the session and checks it on every console request; the JSON
agent routes are left to the gateway's JWT authorizer, as before."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, quote, urlsplit

from intake.console import CALLBACK_PATH, OIDC_SESSION_COOKIE, SIGN_IN_COOKIE, SIGN_IN_PATH
from tests.aws.conftest import Stack
from tests.aws.oidc_provider import (
    CLIENT_ID,
    EMAIL,
    HOST,
    LIFETIME_S,
    Browser,
    Provider,
    provider,
    set_cookie,
    sign_in,
    text,
)

__all__ = ["provider"]  # the fixture (tests.aws.oidc_provider)


def test_a_lead_signs_in_with_the_provider_and_lands_on_the_page_asked_for(stack: Stack, provider: Provider) -> None:
    # Given a ticket, and a browser that has never signed in
    status, _ = stack.post_sample("website-multipart.json")
    assert status == 202 and stack.work() == 1
    [ticket] = stack.get("/tickets")[1]["items"]
    browser = Browser(HOST)
    page = f"/console/tickets/{ticket['reference']}"

    # When it opens the ticket's page
    opened = browser.get(page)

    # Then it is sent to the sign-in, which sends it to the provider with a PKCE challenge, a state and a nonce
    assert opened["statusCode"] == 303 and opened["headers"]["Location"] == f"{SIGN_IN_PATH}?next={quote(page, '')}"
    started = browser.get(opened["headers"]["Location"])
    authorize = urlsplit(started["headers"]["Location"])
    asked = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert f"https://{authorize.netloc}" == provider.issuer and authorize.path == "/authorize"
    assert asked["client_id"] == CLIENT_ID and asked["scope"] == "openid email"
    assert asked["redirect_uri"] == f"https://{HOST}{CALLBACK_PATH}" and asked["code_challenge_method"] == "S256"
    assert len(asked["state"]) >= 32 and len(asked["nonce"]) >= 32 and asked["state"] != asked["nonce"]
    flow = set_cookie(started, SIGN_IN_COOKIE)
    assert {"Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=600"} <= set(flow[1:])

    # When the provider sends it back with a code
    back = urlsplit(provider.follow(started["headers"]["Location"]))
    signed_in = browser.get(f"{back.path}?{back.query}")

    # Then the code was exchanged with the verifier and the client secret from Secrets Manager, the ID token is the
    # session for its lifetime, the flow's cookie is forgotten, and the browser goes back to the page it asked for
    [exchange] = provider.token_requests
    assert exchange["form"]["code_verifier"] and exchange["form"]["redirect_uri"] == asked["redirect_uri"]
    assert signed_in["statusCode"] == 303 and signed_in["headers"]["Location"] == page
    session = set_cookie(signed_in, OIDC_SESSION_COOKIE)
    assert {"Path=/", "HttpOnly", "Secure", "SameSite=Lax"} <= set(session[1:])
    max_age = int(next(a for a in session if a.startswith("Max-Age=")).removeprefix("Max-Age="))
    assert LIFETIME_S - 10 <= max_age <= LIFETIME_S
    assert "Max-Age=0" in set_cookie(signed_in, SIGN_IN_COOKIE) and SIGN_IN_COOKIE not in browser.cookies
    shown = browser.get(page)
    assert shown["statusCode"] == 200 and ticket["reference"] in text(shown) and EMAIL in text(shown)


def test_an_id_token_that_is_not_for_this_sign_in_is_refused(provider: Provider) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    now = int(time.time())
    cases = {
        "forged": {},  # signed by a key that is not the provider's
        "expired": {"exp": now - 120, "iat": now - 3720},
        "wrong audience": {"aud": "another-client"},
        "wrong nonce": {"nonce": "not-this-sign-in"},
        "wrong issuer": {"iss": "https://elsewhere.example.com"},
    }
    for case, claims in cases.items():
        # Given a provider that answers the code with such a token
        provider.claims = claims
        provider.signing_key = rsa.generate_private_key(65537, 2048) if case == "forged" else None
        browser = Browser(HOST)

        # When a browser signs in
        answer = sign_in(browser, provider)

        # Then it is refused, with a page that offers to sign in again, and no session
        assert answer["statusCode"] == 401 and "Sign in again" in text(answer), case
        assert OIDC_SESSION_COOKIE not in browser.cookies, case
        assert browser.get("/")["statusCode"] == 303, case


def test_a_session_cookie_that_is_not_a_valid_id_token_is_no_session(provider: Provider) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    # Given cookies a browser could hold: the provider's token for another client, one that expired, one forged, junk
    provider.claims = {"aud": "another-client"}
    other_client = provider.id_token("n")
    now = int(time.time())
    provider.claims = {"exp": now - 120, "iat": now - 3720}
    expired = provider.id_token("n")
    provider.claims = {}
    provider.signing_key = rsa.generate_private_key(65537, 2048)
    forged = provider.id_token("n")

    for value in (other_client, expired, forged, "not-a-jwt"):
        # When it opens a page and posts a form with it
        browser = Browser(HOST, cookies={OIDC_SESSION_COOKIE: value})
        page = browser.get("/console/quarantine")
        posted = browser.post("/console/failures/some-id/replay", {})

        # Then the page sends it to the sign-in, and the form is refused
        assert page["statusCode"] == 303 and page["headers"]["Location"].startswith(SIGN_IN_PATH)
        assert posted["statusCode"] == 401


def test_without_a_session_pages_go_to_the_sign_in_and_forms_are_refused(provider: Provider) -> None:
    browser = Browser(HOST)

    # When a signed-out browser opens the queue, its table polls (htmx), and a form is posted
    page = browser.get("/?team=support")
    polled = browser.get("/console/queue", {"hx-request": "true", "hx-current-url": f"https://{HOST}/?team=support"})
    posted = browser.post("/console/tickets/01ABC/actions", {"type": "resolved"})

    # Then the page and the poll are sent to the sign-in, back to the queue after; the form is a 401 problem
    assert page["statusCode"] == 303 and page["headers"]["Location"] == f"{SIGN_IN_PATH}?next=%2F%3Fteam%3Dsupport"
    assert polled["statusCode"] == 401 and polled["headers"]["HX-Redirect"] == page["headers"]["Location"]
    assert posted["statusCode"] == 401 and posted["headers"]["Content-Type"] == "application/problem+json"
    assert json.loads(posted["body"])["type"] == "urn:intake:problem:sign-in-required"
    # and what a browser needs to sign in is served without a session
    assert browser.get("/console/login")["statusCode"] == 200
    assert browser.get("/console/static/console.css")["statusCode"] == 200


def test_a_callback_with_another_browsers_state_or_none_in_progress_is_refused(provider: Provider) -> None:
    # Given a browser that started signing in, and an attacker's own code and state from the same provider
    victim, attacker = Browser(HOST), Browser(HOST)
    started = victim.get(f"{SIGN_IN_PATH}?next=/")
    theirs = urlsplit(provider.follow(attacker.get(f"{SIGN_IN_PATH}?next=/")["headers"]["Location"]))

    # When the victim's browser is sent the attacker's callback, and a browser that started nothing is too
    swapped = victim.get(f"{theirs.path}?{theirs.query}")
    unasked = Browser(HOST).get(f"{theirs.path}?{theirs.query}")

    # Then neither signs in, and the provider was never asked for a token
    assert started["statusCode"] == 303
    assert swapped["statusCode"] == unasked["statusCode"] == 401
    assert OIDC_SESSION_COOKIE not in victim.cookies and provider.token_requests == []


def test_the_sign_in_never_sends_a_browser_back_to_itself_or_to_another_site(provider: Provider) -> None:
    for given in ("/console/sign-in?next=/", "/console/sign-in/callback", "https://evil.example/", "//evil.example/"):
        # When a browser signs in from a link that says to go there after
        browser = Browser(HOST)
        started = browser.get(f"{SIGN_IN_PATH}?next={quote(given, '')}")
        back = urlsplit(provider.follow(started["headers"]["Location"]))
        signed_in = browser.get(f"{back.path}?{back.query}")

        # Then it lands on the queue
        assert signed_in["statusCode"] == 303 and signed_in["headers"]["Location"] == "/", given


def test_a_provider_that_cannot_be_reached_is_a_page_saying_so(provider: Provider) -> None:
    # Given a provider that is down
    provider.down = True

    # When a browser opens the console
    browser = Browser(HOST)
    answer = browser.get(browser.get("/")["headers"]["Location"])

    # Then it is told, and may try again
    assert answer["statusCode"] == 502 and "cannot be reached" in text(answer) and "Sign in again" in text(answer)
    assert SIGN_IN_COOKIE not in browser.cookies


def test_the_provider_saying_no_is_a_page_not_an_error(provider: Provider) -> None:
    browser = Browser(HOST)
    browser.get(f"{SIGN_IN_PATH}?next=/")
    state = browser.cookies[SIGN_IN_COOKIE].split(".")[0]

    answer = browser.get(f"{CALLBACK_PATH}?error=access_denied&state={state}")

    assert answer["statusCode"] == 401 and "Sign in again" in text(answer)


def test_signing_out_forgets_the_session_and_signs_out_at_the_provider(provider: Provider) -> None:
    # Given a signed-in browser
    browser = Browser(HOST)
    assert sign_in(browser, provider)["statusCode"] == 303 and OIDC_SESSION_COOKIE in browser.cookies

    # When another site posts the sign-out form, then the console's own page does
    refused = browser.post("/console/logout", {}, origin="https://evil.test")
    assert refused["statusCode"] == 403 and OIDC_SESSION_COOKIE in browser.cookies
    signed_out = browser.post("/console/logout", {})

    # Then the cookie is forgotten and the browser goes to the provider's sign-out, back to the sign-in page
    assert signed_out["statusCode"] == 303 and OIDC_SESSION_COOKIE not in browser.cookies
    location = urlsplit(signed_out["headers"]["Location"])
    assert f"https://{location.netloc}{location.path}" == f"{provider.issuer}/logout"
    assert parse_qs(location.query) == {
        "client_id": [CLIENT_ID],
        "post_logout_redirect_uri": [f"https://{HOST}/console/login"],
    }
    assert browser.get("/")["statusCode"] == 303


def test_the_json_agent_routes_are_left_to_the_gateway(stack: Stack, provider: Provider) -> None:
    # Given the console signing people in itself (the gateway's JWT authorizer stays on the agent routes)
    status, _ = stack.post_sample("website-multipart.json")
    assert status == 202 and stack.work() == 1

    # When a tool calls the JSON API without any cookie (the authorizer has checked its bearer token)
    status, page = stack.get("/tickets")

    # Then it answers JSON as before
    assert status == 200 and len(page["items"]) == 1
