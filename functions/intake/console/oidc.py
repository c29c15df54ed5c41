"""The console's sign-in in AWS: OpenID Connect's authorization code flow with PKCE, state and nonce, as one client
of the provider the policy file names (`api.jwt.issuer`, `api.jwt.console`).

The session is the provider's ID token itself, in an HttpOnly cookie (`intake.console.OIDC_SESSION_COOKIE`),
checked on every console request (signature against the provider's keys, issuer, audience, expiry): no key of ours
to generate, store, rotate or leak, its lifetime the token's, and the same check the sign-in's callback runs.

Imported by the console's door only on that path (PyJWT and `cryptography`, the `console` extra, in the api
function's own layer, cost their import there, not at every cold start). The provider's discovery document and
keys are fetched once per container (keys again when one it does not know appears or after five minutes); nothing
here logs a token, a code or a claim."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from functools import cache
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict, ValidationError

from intake.config import ConsoleSignIn

TIMEOUT_S = 5.0  # each call to the provider: the sign-in answers well within API Gateway's 30 s
LEEWAY_S = 30  # clocks differ a little between the provider and Lambda
# What a signature may be made with: the provider's public keys only (never `none`, never a shared-secret HMAC)
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})


class ProviderUnavailableError(Exception):
    """The OIDC provider could not be reached, or answered something that is not what OIDC says it answers."""


class SignInRefusedError(Exception):
    """A sign-in that cannot be completed (the provider's error, a state or nonce that is not this browser's, a code
    the provider refused) or a session token that is not valid (forged, expired, for another client). The message
    says why, for the logs; never a token or a claim."""


class Discovery(BaseModel):
    """What the console uses of the provider's `/.well-known/openid-configuration`."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # providers publish much more

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None = None
    id_token_signing_alg_values_supported: list[str] = ["RS256"]
    token_endpoint_auth_methods_supported: list[str] = ["client_secret_basic"]  # OIDC's default


@dataclass(frozen=True)
class Client:
    """This deployment as the provider's client: who it is, where the provider sends the browser back."""

    issuer: str
    settings: ConsoleSignIn
    redirect_uri: str
    secret: str | None  # None: a public client (PKCE alone)


@dataclass(frozen=True)
class Flow:
    """One browser's sign-in in progress, kept in its short-lived cookie between leaving for the provider and
    coming back: the state to match, the nonce the ID token must carry, the PKCE verifier, where to go after."""

    state: str
    nonce: str
    verifier: str
    next: str

    def cookie_value(self) -> str:
        after = base64.urlsafe_b64encode(self.next.encode()).decode().rstrip("=")
        return ".".join((self.state, self.nonce, self.verifier, after))

    @classmethod
    def from_cookie(cls, value: str | None) -> Flow:
        parts = (value or "").split(".")
        if len(parts) != 4 or not all(parts[:3]):
            raise SignInRefusedError("no sign-in in progress in this browser")
        try:
            padded = parts[3] + "=" * (-len(parts[3]) % 4)
            after = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
        except ValueError:
            raise SignInRefusedError("the sign-in cookie is damaged") from None
        return cls(parts[0], parts[1], parts[2], after)


@dataclass(frozen=True)
class Session:
    """A signed-in person: their ID token (the cookie's value) and what it says."""

    token: str
    claims: dict[str, Any]

    @property
    def name(self) -> str:
        """Who acts, as the timeline records it: email first, else the provider's user name, else its subject."""
        for claim in ("email", "preferred_username", "sub"):
            value = self.claims.get(claim)
            if isinstance(value, str) and value:
                return value[:200]
        return "console"

    @property
    def expires_at(self) -> int:
        return int(self.claims["exp"])


# ------------------------------------------------------------------------------------------------- the flow


def start(client: Client, after: str) -> tuple[str, Flow]:
    """The provider's authorization URL to send the browser to, and the flow to remember in its cookie."""
    flow = Flow(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64), after)
    query = {
        "response_type": "code",
        "client_id": client.settings.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": " ".join(client.settings.scopes),
        "state": flow.state,
        "nonce": flow.nonce,
        "code_challenge": _challenge(flow.verifier),
        "code_challenge_method": "S256",
    }
    endpoint = discover(client.issuer).authorization_endpoint
    joiner = "&" if urllib.parse.urlsplit(endpoint).query else "?"
    return endpoint + joiner + urllib.parse.urlencode(query), flow


def finish(client: Client, flow: Flow, query: dict[str, str]) -> Session:
    """The provider's answer (`?code=&state=` or `?error=`) → the signed-in session, its ID token checked."""
    if "error" in query:
        raise SignInRefusedError(f"the provider answered {query['error'][:64]!r}")
    if not hmac.compare_digest(query.get("state", "").encode(), flow.state.encode()):
        raise SignInRefusedError("the state is not this browser's sign-in")
    code = query.get("code", "")
    if not code:
        raise SignInRefusedError("the provider sent no code")
    token = _exchange(client, code, flow.verifier)
    session = verify(client, token)
    if not hmac.compare_digest(str(session.claims.get("nonce", "")).encode(), flow.nonce.encode()):
        raise SignInRefusedError("the ID token's nonce is not this sign-in's")
    return session


def verify(client: Client, token: str) -> Session:
    """An ID token of the provider, for this client, not expired: signed by one of the provider's keys with an
    algorithm it announces, `iss` the issuer, `aud` the client id (and `azp` it when there are several)."""
    provider = discover(client.issuer)
    allowed = [a for a in provider.id_token_signing_alg_values_supported if a in ASYMMETRIC]
    client_id = client.settings.client_id
    try:
        key = _keys(provider.jwks_uri).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key,
            algorithms=allowed,
            audience=client_id,
            issuer=provider.issuer,
            leeway=LEEWAY_S,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.PyJWKClientConnectionError:
        raise ProviderUnavailableError("the provider's keys (jwks_uri) could not be read") from None
    except jwt.PyJWTError as error:
        raise SignInRefusedError(f"the ID token is not valid ({type(error).__name__})") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise SignInRefusedError("the ID token was issued to another client (azp)")
    return Session(token, claims)


def sign_out_url(client: Client, signed_out: str) -> str | None:
    """The provider's end-session endpoint (RP-initiated logout) back to `signed_out`, when it publishes one."""
    endpoint = discover(client.issuer).end_session_endpoint
    if endpoint is None:
        return None
    query = {"client_id": client.settings.client_id, "post_logout_redirect_uri": signed_out}
    joiner = "&" if urllib.parse.urlsplit(endpoint).query else "?"
    return endpoint + joiner + urllib.parse.urlencode(query)


# --------------------------------------------------------------------------------------------- the provider


@cache
def discover(issuer: str) -> Discovery:
    """The provider's discovery document, once per container (a failure is not remembered: the next try asks)."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        document = Discovery.model_validate(_get_json(url))
    except ValidationError:
        raise ProviderUnavailableError("the discovery document lacks what OIDC requires") from None
    if document.issuer != issuer:  # OpenID Connect Discovery 4.3: exactly the issuer asked
        raise ProviderUnavailableError("the discovery document names another issuer")
    endpoints = (document.authorization_endpoint, document.token_endpoint, document.jwks_uri)
    if not all(urllib.parse.urlsplit(e).scheme == "https" for e in endpoints):
        raise ProviderUnavailableError("the provider's endpoints must be https")
    return document


@cache
def _keys(jwks_uri: str) -> jwt.PyJWKClient:
    """The provider's signing keys, cached with the client (refetched for a key id it does not know)."""
    return jwt.PyJWKClient(jwks_uri, cache_keys=True, timeout=TIMEOUT_S)


def _exchange(client: Client, code: str, verifier: str) -> str:
    """The code and the PKCE verifier for the ID token, at the token endpoint, authenticated as the client."""
    provider = discover(client.issuer)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
        "code_verifier": verifier,
    }
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    client_id = client.settings.client_id
    if client.secret is None:
        form["client_id"] = client_id
    elif "client_secret_basic" in provider.token_endpoint_auth_methods_supported:
        pair = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(client.secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        form |= {"client_id": client_id, "client_secret": client.secret}
    request = urllib.request.Request(  # noqa: S310 (https, checked at discovery)
        provider.token_endpoint, data=urllib.parse.urlencode(form).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        reason = _oauth_error(error)
        error.close()
        if error.code in (400, 401):
            raise SignInRefusedError(f"the provider refused the code ({reason})") from None
        raise ProviderUnavailableError(f"the token endpoint answered {error.code}") from None
    except (urllib.error.URLError, TimeoutError, ValueError):
        raise ProviderUnavailableError("the token endpoint could not be reached or did not answer JSON") from None
    token = answer.get("id_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise ProviderUnavailableError("the token endpoint answered no ID token (is openid among the scopes?)")
    return token


def _get_json(url: str) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            return json.loads(response.read())
    except (urllib.error.URLError, TimeoutError, ValueError):
        raise ProviderUnavailableError("the discovery document could not be read") from None


def _oauth_error(error: urllib.error.HTTPError) -> str:
    """The `error` code of an OAuth error answer (`invalid_grant`, `invalid_client`), never its description."""
    try:
        code = json.loads(error.read()).get("error")
    except (ValueError, AttributeError):
        return f"HTTP {error.code}"
    return str(code)[:64] if code else f"HTTP {error.code}"


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
