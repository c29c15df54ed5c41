"""`X-Twilio-Signature`: Twilio's published vectors, and twilio-python's `RequestValidator` as an oracle."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from intake.channels import signatures, twilio
from intake.config import Policy
from intake.errors import SignatureInvalidError
from intake.local import samples
from intake.model import WebhookRequest
from intake.secrets import Secrets
from tests.depth import examples

# Twilio's documented example (also twilio-python's tests/unit/test_request_validator.py)
TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+14158675309"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
]
SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
SIGNATURE_WITH_443 = "kvajT1Ptam85bY51eRf/AJRuM3w="  # the same URL signed as https://mycompany.com:443/…
SIGNATURE_HTTP_WITH_80 = "0ZXoZLH/DfblKGATFgpif+LLRf4="  # http://mycompany.com:80/…
JSON_BODY = b'{"property": "value", "boolean": true}'
JSON_BODY_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
JSON_SIGNATURE = "a9nBmqA0ju/hNViExpshrM61xv4="  # over URL + "&bodySHA256=" + JSON_BODY_HASH, no params

BASE_URL = "https://intake.example.com"
FORM = "application/x-www-form-urlencoded"


class MultiDict:
    """What RequestValidator takes for repeated names (a Flask-style MultiDict with `getall`)."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._pairs = list(pairs)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in self._pairs))

    def __len__(self) -> int:
        return len(self._pairs)

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self._pairs if key == name]


def accepts(signature: str | None, *, urls: Sequence[str] = (URL,), params: Sequence[tuple[str, str]] = PARAMS) -> bool:
    try:
        signatures.verify_twilio(TOKEN, urls, params, signature)
    except SignatureInvalidError:
        return False
    return True


def body_accepts(signature: str | None, url: str, body: bytes = JSON_BODY, token: str = TOKEN) -> bool:
    try:
        signatures.verify_twilio_body(token, signatures.twilio_url_variants(url), body, signature)
    except SignatureInvalidError:
        return False
    return True


# ------------------------------------------------------------------------------ published vectors


def test_published_example_signs_to_the_published_signature() -> None:
    # Given Twilio's documented token, URL and POST parameters
    # When the signature is computed
    # Then it is the one Twilio publishes
    assert signatures.twilio_signature(TOKEN, URL, PARAMS) == SIGNATURE


def test_parameter_order_does_not_change_the_signature() -> None:
    assert signatures.twilio_signature(TOKEN, URL, list(reversed(PARAMS))) == SIGNATURE


def test_published_example_is_accepted() -> None:
    assert accepts(SIGNATURE)
    assert accepts(f"  {SIGNATURE}\n")  # header whitespace is not part of the signature


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        (URL, SIGNATURE_WITH_443),
        (URL.replace(".com", ".com:443"), SIGNATURE),
        (URL.replace("https", "http"), SIGNATURE_HTTP_WITH_80),
    ],
    ids=["signed-with-443", "requested-with-443", "http-signed-with-80"],
)
def test_url_with_or_without_the_default_port_is_accepted(url: str, signature: str) -> None:
    # Given a URL whose signature Twilio made over the other form (with / without the default port)
    # When it is verified against the URL's variants
    # Then it is accepted
    assert accepts(signature, urls=signatures.twilio_url_variants(url))


def test_other_ports_are_kept_as_they_are() -> None:
    # Given a URL on port 1234, signed by someone over the URL without that port
    url = URL.replace(".com", ".com:1234")
    # Then only the URL as given is a candidate, and that signature does not match it
    # (twilio-python strips any port; our URL comes from our own configuration, so we do not)
    assert signatures.twilio_url_variants(url) == [url]
    assert not accepts(SIGNATURE, urls=signatures.twilio_url_variants(url))


@pytest.mark.parametrize(
    ("url", "variants"),
    [
        ("https://h.example/a?b=1", ["https://h.example/a?b=1", "https://h.example:443/a?b=1"]),
        ("https://h.example:443/a", ["https://h.example:443/a", "https://h.example/a"]),
        ("http://h.example", ["http://h.example", "http://h.example:80"]),
        ("http://127.0.0.1:8080/x", ["http://127.0.0.1:8080/x"]),
        ("https://u:p@[2001:db8::1]/x", ["https://u:p@[2001:db8::1]/x", "https://u:p@[2001:db8::1]:443/x"]),
        ("HTTPS://Host.Example/A%2Fb", ["HTTPS://Host.Example/A%2Fb", "HTTPS://Host.Example:443/A%2Fb"]),
    ],
)
def test_url_variants_only_add_or_remove_the_default_port(url: str, variants: list[str]) -> None:
    assert signatures.twilio_url_variants(url) == variants


def test_published_json_body_example_is_accepted() -> None:
    # Given Twilio's JSON example: the body's hash in the URL, the signature over the URL alone
    url = f"{URL}&bodySHA256={JSON_BODY_HASH}"
    # Then the hash is the body's, and the signature is accepted
    assert signatures.twilio_body_hash(JSON_BODY) == JSON_BODY_HASH
    assert body_accepts(JSON_SIGNATURE, url)


def test_json_body_that_does_not_match_its_hash_is_rejected() -> None:
    url = f"{URL}&bodySHA256={JSON_BODY_HASH}"
    assert not body_accepts(JSON_SIGNATURE, url, body=JSON_BODY.replace(b"value", b"forged"))


def test_json_body_without_a_body_hash_is_rejected() -> None:
    signature = signatures.twilio_signature(TOKEN, URL, [])
    assert not body_accepts(signature, URL)


# -------------------------------------------------------------------------------------- forgeries


@pytest.mark.parametrize("signature", [None, "", "   "], ids=["missing", "empty", "blank"])
def test_missing_signature_is_rejected(signature: str | None) -> None:
    assert not accepts(signature)


def test_signature_made_with_another_token_is_rejected() -> None:
    assert not accepts(signatures.twilio_signature("not-the-token", URL, PARAMS))


def test_changed_added_or_dropped_parameter_is_rejected() -> None:
    changed = [(name, "+15005550006" if name == "From" else value) for name, value in PARAMS]
    assert not accepts(SIGNATURE, params=changed)
    assert not accepts(SIGNATURE, params=[*PARAMS, ("Body", "hi")])
    assert not accepts(SIGNATURE, params=PARAMS[1:])


def test_signature_for_another_url_is_rejected() -> None:
    assert not accepts(SIGNATURE, urls=["https://mycompany.com/myapp.php?foo=1&bar=3"])
    assert not accepts(SIGNATURE, urls=[])


# ------------------------------------------------------------------------- twilio-python as oracle

names = st.one_of(
    st.sampled_from(["Body", "From", "To", "MediaUrl0", "MediaUrl10", "Ünïcode", "a", "A", "_"]),
    st.text(min_size=1, max_size=12),
)
values = st.text(max_size=40)  # any code point but surrogates: accents, CJK, emoji, controls, empty
pairs = st.lists(st.tuples(names, values), max_size=12)
tokens = st.text(min_size=1, max_size=40)
hosts = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,6}){1,2}", fullmatch=True)
paths = st.from_regex(r"(/[A-Za-z0-9._~%-]{0,8}){0,4}", fullmatch=True)
queries = st.one_of(
    st.just(""), st.from_regex(r"\?[a-z]{1,5}=[A-Za-z0-9%+]{0,8}(&[a-z]{1,5}=[0-9]{0,4}){0,2}", fullmatch=True)
)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["https", "http"]))
    port = draw(st.sampled_from(["", ":443" if scheme == "https" else ":80"]))
    return f"{scheme}://{draw(hosts)}{port}{draw(paths)}{draw(queries)}"


@settings(max_examples=examples(200))
@given(token=tokens, url=urls(), params=pairs)
def test_signature_equals_twilio_pythons_over_repeated_and_non_ascii_params(
    token: str, url: str, params: list[tuple[str, str]]
) -> None:
    # Given any token, URL and parameters, with repeated names and non-ASCII text
    # When both compute the signature (twilio-python given a multidict, so it sees every value)
    # Then they agree
    oracle = RequestValidator(token).compute_signature(url, MultiDict(params))
    assert signatures.twilio_signature(token, url, params) == oracle


@settings(max_examples=examples(100))
@given(token=tokens, url=urls(), params=pairs, signed_with_port=st.booleans())
def test_acceptance_agrees_with_twilio_python_for_either_port_form(
    token: str, url: str, params: list[tuple[str, str]], signed_with_port: bool
) -> None:
    # Given a signature Twilio made over the URL with or without its default port
    variants = signatures.twilio_url_variants(url)
    signed_url = next(v for v in variants if (urlsplit(v).port is not None) is signed_with_port)
    signature = RequestValidator(token).compute_signature(signed_url, MultiDict(params))
    # When both check the URL as requested
    # Then both accept it
    assert RequestValidator(token).validate(url, MultiDict(params), signature)
    signatures.verify_twilio(token, variants, params, signature)


@settings(max_examples=examples(100))
@given(token=tokens, url=urls(), params=pairs, extra=st.tuples(names, values))
def test_forged_parameter_is_rejected_by_both(
    token: str, url: str, params: list[tuple[str, str]], extra: tuple[str, str]
) -> None:
    # Given a genuine signature, then a parameter the attacker adds (one the request did not have)
    signature = RequestValidator(token).compute_signature(url, MultiDict(params))
    assume(extra not in params)  # a repeated identical pair counts once in both: not a forgery
    forged = [*params, extra]
    # Then neither accepts the forged request
    assert not RequestValidator(token).validate(url, MultiDict(forged), signature)
    with pytest.raises(SignatureInvalidError):
        signatures.verify_twilio(token, signatures.twilio_url_variants(url), forged, signature)


@settings(max_examples=50)
@given(token=tokens, url=urls(), body=st.text(max_size=200))
def test_json_body_acceptance_agrees_with_twilio_python(token: str, url: str, body: str) -> None:
    # Given a JSON-style body and the URL with its bodySHA256, signed over the URL alone
    hashed = url + ("&" if "?" in url else "?") + "bodySHA256=" + signatures.twilio_body_hash(body.encode())
    signature = RequestValidator(token).compute_signature(hashed, {})
    # Then both accept it, and both refuse another body under the same hash
    assert RequestValidator(token).validate(hashed, body, signature)
    assert body_accepts(signature, hashed, body.encode(), token)
    assert not RequestValidator(token).validate(hashed, body + " ", signature)
    assert not body_accepts(signature, hashed, (body + " ").encode(), token)


# ----------------------------------------------------------------- the adapter's verify, end to end


def form_request(
    path: str, params: Sequence[tuple[str, str]], signature: str | None, query: str = ""
) -> WebhookRequest:
    headers = {"content-type": f"{FORM}; charset=utf-8"}
    if signature is not None:
        headers["x-twilio-signature"] = signature
    return WebhookRequest("POST", path, query, headers, urlencode(params).encode())


def verified(request: WebhookRequest, token: str | None = TOKEN, base: str = BASE_URL) -> bool:
    try:
        twilio.verify(request, token, base)
    except SignatureInvalidError:
        return False
    return True


def test_request_signed_over_public_url_path_and_query_is_verified() -> None:
    # Given a form post Twilio signed over our public URL, the route and a query string
    params = [("CallSid", "CA" + "0" * 32), ("From", "+33645218709"), ("Body", "Café ☕ & co")]
    url = f"{BASE_URL}{twilio.MESSAGING_PATH}?team=support"
    signature = signatures.twilio_signature(TOKEN, url, params)
    # When the adapter verifies it (our base URL configured with a trailing slash)
    # Then it is accepted; on another route, or without its query, it is not
    assert verified(form_request(twilio.MESSAGING_PATH, params, signature, "team=support"), base=BASE_URL + "/")
    assert not verified(form_request(twilio.VOICE_PATH, params, signature, "team=support"))
    assert not verified(form_request(twilio.MESSAGING_PATH, params, signature))


def test_signed_urls_rebuild_the_requested_url_and_its_port_variant() -> None:
    request = form_request(twilio.VOICE_PATH + "/status", [], None, "a=1")
    assert twilio.signed_urls(BASE_URL + "/", request) == [
        f"{BASE_URL}/webhooks/twilio/voice/status?a=1",
        "https://intake.example.com:443/webhooks/twilio/voice/status?a=1",
    ]


def test_request_without_token_or_signature_is_rejected() -> None:
    params = [("CallSid", "CA" + "0" * 32)]
    signature = signatures.twilio_signature(TOKEN, BASE_URL + twilio.VOICE_PATH, params)
    assert verified(form_request(twilio.VOICE_PATH, params, signature))
    assert not verified(form_request(twilio.VOICE_PATH, params, signature), token=None)
    assert not verified(form_request(twilio.VOICE_PATH, params, None))


def test_undecodable_form_body_is_rejected_as_unverifiable() -> None:
    request = WebhookRequest("POST", twilio.VOICE_PATH, "", {"content-type": FORM, "x-twilio-signature": "x"}, b"\xff")
    assert not verified(request)


def test_json_request_is_verified_with_its_body_hash() -> None:
    # Given a JSON body whose hash is in the query, signed over the URL alone
    body = json.dumps({"CallSid": "CA" + "1" * 32, "Note": "é"}).encode()
    query = f"bodySHA256={signatures.twilio_body_hash(body)}"
    signature = signatures.twilio_signature(TOKEN, f"{BASE_URL}{twilio.VOICE_PATH}?{query}", [])
    headers = {"content-type": "application/json", "x-twilio-signature": signature}
    # Then it is accepted; the same body without the hash in the URL, or another body, is not
    assert verified(WebhookRequest("POST", twilio.VOICE_PATH, query, headers, body))
    assert not verified(WebhookRequest("POST", twilio.VOICE_PATH, "", headers, body))
    assert not verified(WebhookRequest("POST", twilio.VOICE_PATH, query, headers, body + b" "))


# ------------------------------------------------------------------------------ signed samples

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "events" / "twilio").glob("*.json"))


def test_there_is_a_sample_for_every_twilio_route() -> None:
    routes = {samples.load(path)["path"] for path in SAMPLES}
    assert routes == {
        twilio.VOICE_PATH,
        twilio.STATUS_PATH,
        twilio.RECORDING_PATH,
        twilio.TRANSCRIPTION_PATH,
        twilio.MESSAGING_PATH,
    }


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_prepared_twilio_sample_verifies_at_the_servers_url(path: Path, policy: Policy) -> None:
    # Given a Twilio sample prepared for a server at some URL, with the auth token in the environment
    base = "http://127.0.0.1:54321"
    prepared = samples.prepare(
        samples.load(path), policy, Secrets(environ={"INTAKE_TWILIO_AUTH_TOKEN": TOKEN}), public_base_url=base
    )
    path_only, _, query = prepared.path.partition("?")
    request = WebhookRequest("POST", path_only, query, prepared.headers, prepared.body)
    # When the server verifies it against its own public URL
    # Then it is accepted, and not by a server that believes it lives elsewhere
    assert verified(request, base=base)
    assert not verified(request, base="http://127.0.0.1:8080")


def test_json_sample_is_signed_with_its_body_hash(policy: Policy) -> None:
    sample = {"path": twilio.VOICE_PATH, "json": {"CallSid": "CA" + "2" * 32}}
    prepared = samples.prepare(sample, policy, Secrets(environ={"INTAKE_TWILIO_AUTH_TOKEN": TOKEN}))
    path_only, _, query = prepared.path.partition("?")
    assert query.startswith("bodySHA256=")
    # prepare()'s default public base URL is the one `intake serve` uses by default
    assert verified(
        WebhookRequest("POST", path_only, query, prepared.headers, prepared.body), base="http://127.0.0.1:8080"
    )


def test_twilio_sample_needs_the_auth_token(policy: Policy) -> None:
    with pytest.raises(LookupError, match="INTAKE_TWILIO_AUTH_TOKEN"):
        samples.prepare(samples.load(SAMPLES[0]), policy, Secrets(environ={}))


def test_form_samples_are_prepared_as_before(policy: Policy) -> None:
    # Given a forms sample, prepared with and without a public base URL
    path = Path(__file__).resolve().parents[2] / "events" / "forms" / "website-urlencoded.json"
    plain = samples.prepare(samples.load(path), policy, Secrets(environ={}))
    elsewhere = samples.prepare(samples.load(path), policy, Secrets(environ={}), public_base_url="https://x.example")
    # Then nothing Twilio-specific is added and the URL does not matter
    assert plain == elsewhere
    assert "x-twilio-signature" not in plain.headers
