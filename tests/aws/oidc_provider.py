"""A local OpenID Connect provider, as a real HTTPS server on 127.0.0.1, and a browser for the console's pages.

The provider publishes its discovery document and its signing key (RSA, made by `cryptography`), answers
`/authorize` as a provider whose user is already signed in (a redirect back with a one-time code) and `/token`
only for that code, with the client's secret (HTTP basic), from the redirect URI it was issued for, and with the
PKCE verifier whose S256 challenge came with it. Its ID tokens can be scripted to be forged, expired, for another
client or with another nonce. Its TLS certificate is self-signed: `SSL_CERT_FILE` points Python's clients at it.

`Browser` drives the api function with API Gateway's HTTP API events (cookies in `cookies`, as API Gateway passes
them) and keeps the cookies it is given, as a browser does."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import secrets
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import jwt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from intake import runtime
from intake.console import CALLBACK_PATH
from intake.local.gateway import LocalContext, api_event

CLIENT_ID = "intake-console"
CLIENT_SECRET = "test-console-client-secret"
KEY_ID = "test-key-1"
EMAIL = "lead@example.com"
LIFETIME_S = 3600


@dataclass(frozen=True)
class Grant:
    challenge: str
    nonce: str
    redirect_uri: str


@dataclass
class Provider:
    """The provider's state: what it issued, what it was asked, and how its next ID token is to be made."""

    cert_file: Path
    redirect_uri: str
    port: int = 0
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    grants: dict[str, Grant] = field(default_factory=dict)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    claims: dict[str, Any] = field(default_factory=dict)  # the next ID tokens' claims, changed or added
    signing_key: rsa.RSAPrivateKey | None = None  # another key than the published one: a forged token
    down: bool = False  # every request answered 503
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def issuer(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": KEY_ID, "use": "sig", "alg": "RS256"}]}

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "user-1", "aud": CLIENT_ID, "iat": now, "exp": now + LIFETIME_S}
        claims |= {"nonce": nonce, "email": EMAIL, **self.claims}
        key = self.signing_key or self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KEY_ID})

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """The user is signed in at the provider already: straight back to the client with a code."""
        wanted = {"response_type": "code", "client_id": CLIENT_ID, "code_challenge_method": "S256"}
        if any(query.get(k) != v for k, v in wanted.items()) or query.get("redirect_uri") != self.redirect_uri:
            return 400, {"Content-Type": "text/plain"}, b"invalid authorization request"
        if "openid" not in query.get("scope", "").split():
            return 400, {"Content-Type": "text/plain"}, b"openid scope required"
        code = secrets.token_urlsafe(16)
        with self._lock:
            self.grants[code] = Grant(query["code_challenge"], query.get("nonce", ""), query["redirect_uri"])
        back = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"
        return 302, {"Location": back}, b""

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        """A code for an ID token: once, for the client with its secret, with the verifier of its challenge."""
        with self._lock:
            self.token_requests.append({"form": form, "authorization": authorization})
            grant = self.grants.pop(form.get("code", ""), None)
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if authorization != expected:
            return _json(401, {"error": "invalid_client"})
        if form.get("grant_type") != "authorization_code" or grant is None:
            return _json(400, {"error": "invalid_grant"})
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if challenge != grant.challenge or form.get("redirect_uri") != grant.redirect_uri:
            return _json(400, {"error": "invalid_grant"})
        answer = {"access_token": "opaque", "token_type": "Bearer", "expires_in": LIFETIME_S}
        return _json(200, {**answer, "id_token": self.id_token(grant.nonce)})

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if self.down:
            status, headers, body = 503, {"Content-Type": "text/plain"}, b"unavailable"
        elif handler.command == "GET" and parts.path == "/.well-known/openid-configuration":
            status, headers, body = _json(200, self.discovery())
        elif handler.command == "GET" and parts.path == "/jwks":
            status, headers, body = _json(200, self.jwks())
        elif handler.command == "GET" and parts.path == "/authorize":
            status, headers, body = self.authorize(query)
        elif handler.command == "POST" and parts.path == "/token":
            length = int(handler.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(handler.rfile.read(length).decode()).items()}
            status, headers, body = self.token(form, handler.headers.get("Authorization"))
        else:
            status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found"
        handler.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def follow(self, location: str) -> str:
        """What a browser does with the redirect to the provider: the provider's redirect back (its Location)."""
        context = ssl.create_default_context(cafile=str(self.cert_file))
        import http.client

        parts = urlsplit(location)
        connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=context, timeout=5)
        try:
            connection.request("GET", f"{parts.path}?{parts.query}")
            response = connection.getresponse()
            response.read()
            assert response.status == 302, response.status
            return str(response.getheader("Location"))
        finally:
            connection.close()


def _json(status: int, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", "Cache-Control": "no-store"}, json.dumps(payload).encode()


@contextmanager
def oidc_provider(folder: Path, redirect_uri: str) -> Iterator[Provider]:
    """The provider, serving HTTPS on a free port of 127.0.0.1 with a self-signed certificate written to `folder`."""
    key = rsa.generate_private_key(65537, 2048)
    cert_file, key_file = folder / "provider.pem", folder / "provider-key.pem"
    cert_file.write_bytes(_self_signed(key).public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    provider = Provider(cert_file, redirect_uri)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            provider.answer(self)

        def do_POST(self) -> None:
            provider.answer(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    provider.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def console_in_aws(monkeypatch: pytest.MonkeyPatch, folder: Path, host: str, policy_file: Path) -> Iterator[Provider]:
    """The api function as the stack deploys it with `api.jwt.console` (`policy_file` plus that section): the
    console's client at the provider, its secret in Secrets Manager (moto), the function signing people in."""
    with oidc_provider(folder, f"https://{host}{CALLBACK_PATH}") as provider:
        policy = yaml.safe_load(policy_file.read_text())
        console = {"client_id": CLIENT_ID, "scopes": ["openid", "email"]}
        policy["api"] = {"jwt": {"issuer": provider.issuer, "audience": ["intake-agents"], "console": console}}
        (folder / "intake.yaml").write_text(yaml.safe_dump(policy))
        secret = boto3.client("secretsmanager").create_secret(
            Name="intake-console-client", SecretString=json.dumps({"CONSOLE_CLIENT_SECRET": CLIENT_SECRET})
        )
        for name, value in {
            "INTAKE_CONFIG": str(folder / "intake.yaml"),
            "INTAKE_CONSOLE_SIGN_IN": "oidc",
            "INTAKE_CONSOLE_SECRET_ARN": secret["ARN"],
            "INTAKE_PUBLIC_BASE_URL": f"https://{host}",
            "SSL_CERT_FILE": str(provider.cert_file),  # Python's HTTPS clients trust the provider's certificate
        }.items():
            monkeypatch.setenv(name, value)
        runtime.reset()
        # Since Python 3.13 `urlopen` builds its TLS context with its first opener and keeps it: a new opener trusts
        # this provider's certificate (and the next test's, its own)
        urllib.request.install_opener(None)
        try:
            yield provider
        finally:
            urllib.request.install_opener(None)


def sign_in(browser: Browser, provider: Provider, target: str = "/") -> dict[str, Any]:
    """Open `target` signed out and do what a browser does: to the sign-in, the provider, back to the callback."""
    opened = browser.get(target)
    assert opened["statusCode"] == 303, text(opened)
    started = browser.get(opened["headers"]["Location"])
    assert started["statusCode"] == 303, text(started)
    back = urlsplit(provider.follow(started["headers"]["Location"]))
    assert (back.scheme, back.netloc, back.path) == ("https", browser.host, CALLBACK_PATH)
    return browser.get(f"{back.path}?{back.query}")


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


# ------------------------------------------------------------------------------------------------ a browser


@dataclass
class Browser:
    """A browser on the console in AWS: requests as API Gateway hands them to the api function, cookies kept."""

    host: str
    cookies: dict[str, str] = field(default_factory=dict)

    def get(self, target: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        return self.send("GET", target, b"", headers)

    def post(self, target: str, form: dict[str, str], origin: str | None = None) -> dict[str, Any]:
        headers = {"content-type": "application/x-www-form-urlencoded", "origin": origin or f"https://{self.host}"}
        return self.send("POST", target, urlencode(form).encode(), headers)

    def send(self, method: str, target: str, body: bytes, headers: dict[str, str] | None = None) -> dict[str, Any]:
        from intake.handlers import api

        event = api_event(method, target, {"host": self.host, **(headers or {})}, body, "198.51.100.7")
        if self.cookies:
            event["cookies"] = [f"{name}={value}" for name, value in self.cookies.items()]
        result: dict[str, Any] = api.handler(event, LocalContext("api", "req-console"))
        for line in result.get("cookies") or []:
            pair, *attributes = line.split("; ")
            name, _, value = pair.partition("=")
            if value and "Max-Age=0" not in attributes:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return result


def text(result: dict[str, Any]) -> str:
    body = result.get("body") or ""
    return base64.b64decode(body).decode() if result.get("isBase64Encoded") else body


def set_cookie(result: dict[str, Any], name: str) -> list[str]:
    """The attributes of the `Set-Cookie` for `name` in an answer (`["a=b", "Path=/", "HttpOnly", ...]`)."""
    found = [line.split("; ") for line in result.get("cookies") or [] if line.startswith(f"{name}=")]
    assert len(found) == 1, result.get("cookies")
    return found[0]


HOST = "abc123.execute-api.eu-west-3.amazonaws.com"  # the API's domain, as API Gateway names one


@pytest.fixture
def provider(stack: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Provider]:
    """The moto stack's api function signing people in with a fake provider (the shipped policy plus the console)."""
    from tests.aws.conftest import ROOT

    with console_in_aws(monkeypatch, tmp_path, HOST, ROOT / "intake.yaml") as fake:
        yield fake
