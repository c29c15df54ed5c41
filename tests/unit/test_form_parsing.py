"""`forms.parse`: JSON, urlencoded and multipart bodies, Typeform payloads, and the honeypot."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from intake.channels import forms
from intake.channels.forms import Form
from intake.errors import FieldInvalidError, PayloadTooLargeError, UnsupportedMediaTypeError

from .builders import BOUNDARY, json_request, multipart, request

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")

# ------------------------------------------------------------------------------------------ JSON


def test_json_form_fields_are_read_by_name(contact_form: Form) -> None:
    # Given a JSON object of fields, When it is parsed, Then each field is kept by its name
    sent = {"name": "Camille Durand", "email": "camille@example.org", "message": "Bonjour", "order": "1042"}
    submission = forms.parse(contact_form, json_request(sent))
    assert submission.fields == sent
    assert submission.files == []
    assert submission.submission_id is None


def test_json_values_that_are_not_strings_are_kept_as_text(contact_form: Form) -> None:
    sent = {
        "count": 3,
        "ok": True,
        "ratio": 0.5,
        "tags": ["a", "b", 7],
        "address": {"city": "Lyon"},
        "gone": None,
    }
    fields = forms.parse(contact_form, json_request(sent)).fields
    assert fields == {
        "count": "3",
        "ok": "true",
        "ratio": "0.5",
        "tags": "a, b, 7",
        "address": '{"city": "Lyon"}',
    }


@pytest.mark.parametrize("media_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_media_type_is_recognized_with_parameters_and_any_case(contact_form: Form, media_type: str) -> None:
    submission = forms.parse(contact_form, request(b'{"message": "hi"}', media_type))
    assert submission.fields == {"message": "hi"}


@pytest.mark.parametrize(
    "body",
    [b"[]", b'"just a string"', b"42", b"{not json", b"", b'{"message": "caf\xe9"}', b"[" * 100_000],
    ids=["array", "string", "number", "broken", "empty", "latin-1", "deeply-nested"],
)
def test_json_body_that_is_not_an_object_of_fields_is_rejected_naming_the_body(contact_form: Form, body: bytes) -> None:
    # Given a JSON body that is not an object (or not JSON, or nested past any sane depth)
    # When it is parsed, Then it is a field-invalid problem about the body, never an unexpected error
    with pytest.raises(FieldInvalidError) as raised:
        forms.parse(contact_form, request(body, "application/json"))
    assert raised.value.field == "(body)"


# ------------------------------------------------------------------------------------ urlencoded


def test_urlencoded_fields_are_decoded(website_form: Form) -> None:
    body = b"full_name=Jonas+Weber&email=jonas%40example.net&message=Caf%C3%A9+%26+more&website="
    submission = forms.parse(website_form, request(body, "application/x-www-form-urlencoded"))
    assert submission.fields == {
        "full_name": "Jonas Weber",
        "email": "jonas@example.net",
        "message": "Café & more",
        "website": "",
    }


def test_urlencoded_repeated_names_are_joined_in_order(website_form: Form) -> None:
    # Given checkboxes that share a name, When parsed, Then their values are joined in the order sent
    body = b"topics=billing&message=hi&topics=login&topics=&topics=refund"
    fields = forms.parse(website_form, request(body, "application/x-www-form-urlencoded")).fields
    assert fields == {"topics": "billing, login, , refund", "message": "hi"}


def test_urlencoded_body_that_is_not_utf8_is_rejected(website_form: Form) -> None:
    with pytest.raises(FieldInvalidError) as raised:
        forms.parse(website_form, request(b"message=caf\xe9", "application/x-www-form-urlencoded"))
    assert raised.value.field == "(body)"


@pytest.mark.parametrize("media_type", [None, "text/plain", "application/xml", "text/html; charset=utf-8"])
def test_other_media_types_are_unsupported(contact_form: Form, media_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaTypeError) as raised:
        forms.parse(contact_form, request(b"message=hi", media_type))
    assert raised.value.accepted == forms.MEDIA_TYPES


# ------------------------------------------------------------------------------------- multipart


def test_multipart_fields_and_files_are_read_with_name_type_and_size(contact_form: Form) -> None:
    # Given a browser's multipart post with two fields, a repeated one, a screenshot and a text file
    sent = multipart(
        fields=[
            ("message", "See the screenshot.\r\nThanks!"),
            ("email", "a@example.com"),
            ("tag", "x"),
            ("tag", "y"),
        ],
        files=[
            ("screenshot", "invoice.png", "image/png", PNG),
            ("log", "résumé.txt", "text/plain", "Café ☕\n".encode()),
        ],
    )
    # When it is parsed
    submission = forms.parse(contact_form, sent)
    # Then fields are text (repeated names joined) and files keep their field, name, type and bytes
    assert submission.fields == {
        "message": "See the screenshot.\r\nThanks!",
        "email": "a@example.com",
        "tag": "x, y",
    }
    assert [(f.field, f.filename, f.content_type, len(f.content)) for f in submission.files] == [
        ("screenshot", "invoice.png", "image/png", len(PNG)),
        ("log", "résumé.txt", "text/plain", len("Café ☕\n".encode())),
    ]
    assert submission.files[0].content == PNG
    assert submission.files[0].sha256 == hashlib.sha256(PNG).hexdigest()


def test_multipart_empty_file_input_is_ignored(contact_form: Form) -> None:
    # Given a file input the user left empty (browsers send it with an empty filename and no bytes)
    sent = multipart(fields=[("message", "hi")], files=[("attachment", "", "application/octet-stream", b"")])
    submission = forms.parse(contact_form, sent)
    assert submission.files == []
    assert submission.fields == {"message": "hi"}


def test_multipart_file_of_a_type_the_form_does_not_allow_is_unsupported(contact_form: Form) -> None:
    sent = multipart(fields=[("message", "hi")], files=[("f", "setup.exe", "application/x-msdownload", b"MZ\x90")])
    with pytest.raises(UnsupportedMediaTypeError) as raised:
        forms.parse(contact_form, sent)
    assert raised.value.media_type == "application/x-msdownload"
    assert raised.value.accepted == contact_form.attachments.types
    assert "setup.exe" in str(raised.value)


def test_multipart_file_over_the_form_limit_is_too_large(contact_form: Form) -> None:
    # Given the contact form's limit of 2 MiB per file, and a file one byte over it
    limit = contact_form.attachments.max_file_bytes
    sent = multipart(fields=[("message", "hi")], files=[("f", "scan.pdf", "application/pdf", b"%" * (limit + 1))])
    with pytest.raises(PayloadTooLargeError) as raised:
        forms.parse(contact_form, sent)
    assert (raised.value.size, raised.value.limit) == (limit + 1, limit)


def test_multipart_file_at_the_form_limit_is_accepted(contact_form: Form) -> None:
    limit = contact_form.attachments.max_file_bytes
    sent = multipart(fields=[("message", "hi")], files=[("f", "scan.pdf", "application/pdf", b"%" * limit)])
    assert [len(f.content) for f in forms.parse(contact_form, sent).files] == [limit]


def test_multipart_with_more_files_than_the_form_allows_is_rejected(contact_form: Form) -> None:
    allowed = contact_form.attachments.max_files
    files = [("f", f"page{n}.png", "image/png", PNG) for n in range(allowed + 1)]
    with pytest.raises(FieldInvalidError) as raised:
        forms.parse(contact_form, multipart(fields=[("message", "hi")], files=files))
    assert raised.value.field == "(files)"
    assert str(allowed) in raised.value.reason


def test_multipart_with_as_many_files_as_the_form_allows_is_accepted(contact_form: Form) -> None:
    allowed = contact_form.attachments.max_files
    files = [("f", f"page{n}.png", "image/png", PNG) for n in range(allowed)]
    assert len(forms.parse(contact_form, multipart(files=files)).files) == allowed


def test_multipart_without_a_boundary_is_rejected(contact_form: Form) -> None:
    with pytest.raises(FieldInvalidError) as raised:
        forms.parse(contact_form, request(b"message=hi", "multipart/form-data"))
    assert raised.value.field == "(body)"


@given(content=st.binary(min_size=1, max_size=2048), text=st.text(max_size=200))
def test_multipart_file_bytes_and_field_text_arrive_unchanged(contact_form: Form, content: bytes, text: str) -> None:
    # Given any file content (CR, LF, NUL, invalid UTF-8...) and any field text
    assume(BOUNDARY.encode() not in content and BOUNDARY not in text)
    sent = multipart(fields=[("message", text)], files=[("f", "data.txt", "text/plain", content)])
    # When parsed, Then the attachment is byte-for-byte what was sent, and so is the field
    submission = forms.parse(contact_form, sent)
    assert [f.content for f in submission.files] == [content]
    assert submission.fields == {"message": text}


# -------------------------------------------------------------------------------------- Typeform


def _typeform(answers: list[dict[str, Any]], **response: Any) -> dict[str, Any]:
    return {
        "event_id": "01JDTYPEFORMEVENT0000000001",
        "event_type": "form_response",
        "form_response": {"form_id": "lT4Z3j", "token": "a3a12ec6", "answers": answers, **response},
    }


def _answer(ref: str | None, kind: str, value: Any) -> dict[str, Any]:
    field = {"id": f"id-{ref}", "type": "x"} | ({"ref": ref} if ref else {})
    return {"type": kind, kind: value, "field": field}


def test_typeform_answers_are_mapped_by_field_ref(feedback_form: Form) -> None:
    # Given a Typeform webhook with one answer of each common kind
    payload = _typeform(
        [
            _answer("customer_name", "text", "Sam Okafor"),
            _answer("customer_email", "email", "sam@example.com"),
            _answer("feedback", "text", "The app crashes on Android 15."),
            _answer("platform", "choice", {"label": "Android"}),
            _answer("other_platform", "choice", {"other": "Amiga"}),
            _answer("areas", "choices", {"labels": ["Settings", "Login"], "other": "Sync"}),
            _answer("plain_areas", "choices", {"labels": ["Billing"]}),
            _answer("score", "number", 9),
            _answer("consent", "boolean", True),
            _answer("when", "date", "2026-11-20"),
            _answer(None, "text", "an answer whose field has no ref"),
        ]
    )
    # When parsed, Then each answer sits under its field's ref, as text
    fields = forms.parse(feedback_form, json_request(payload)).fields
    assert fields == {
        "customer_name": "Sam Okafor",
        "customer_email": "sam@example.com",
        "feedback": "The app crashes on Android 15.",
        "platform": "Android",
        "other_platform": "Amiga",
        "areas": "Settings, Login, Sync",
        "plain_areas": "Billing",
        "score": "9",
        "consent": "true",
        "when": "2026-11-20",
    }


def test_typeform_hidden_fields_are_kept_and_answers_win_over_them(feedback_form: Form) -> None:
    payload = _typeform(
        [_answer("customer_email", "email", "typed@example.com")],
        hidden={"customer_email": "hidden@example.com", "utm_source": "newsletter", "user_id": 42},
    )
    fields = forms.parse(feedback_form, json_request(payload)).fields
    assert fields == {"customer_email": "typed@example.com", "utm_source": "newsletter", "user_id": "42"}


def test_typeform_token_identifies_the_submission(feedback_form: Form) -> None:
    # Given the same response delivered twice (Typeform retries), Then both carry the same id
    payload = _typeform([_answer("feedback", "text", "hi")], token="tok-42")
    first = forms.parse(feedback_form, json_request(payload))
    again = forms.parse(feedback_form, json_request(payload))
    assert first.submission_id == again.submission_id == "typeform-tok-42"


def test_typeform_event_id_identifies_the_submission_when_there_is_no_token(feedback_form: Form) -> None:
    payload = _typeform([], token=None)
    assert forms.parse(feedback_form, json_request(payload)).submission_id == "typeform-01JDTYPEFORMEVENT0000000001"


@pytest.mark.parametrize(
    "payload",
    [{"event_id": "x"}, [], {"form_response": []}, {"form_response": "yes"}],
    ids=["no-form-response", "array", "response-is-array", "response-is-string"],
)
def test_json_that_is_not_a_typeform_webhook_is_rejected(feedback_form: Form, payload: Any) -> None:
    with pytest.raises(FieldInvalidError) as raised:
        forms.parse(feedback_form, json_request(payload))
    assert raised.value.field == "form_response"


@pytest.mark.parametrize(
    "response",
    [
        {"answers": [42]},
        {"answers": ["text"]},
        {"answers": [{"type": "text", "text": "hi", "field": "feedback"}]},
        {"answers": {"feedback": "hi"}},
        {"answers": [], "hidden": ["utm_source"]},
    ],
    ids=["answer-is-number", "answer-is-string", "field-is-string", "answers-is-object", "hidden-is-array"],
)
def test_malformed_typeform_answers_are_rejected_as_invalid_fields(feedback_form: Form, response: Any) -> None:
    # Given a signed Typeform delivery whose answers do not have Typeform's shape
    # When parsed, Then it is a field-invalid problem (400), not an unexpected error (500, retried for hours)
    with pytest.raises(FieldInvalidError):
        forms.parse(feedback_form, json_request({"event_id": "x", "form_response": response}))


def test_typeform_form_accepts_only_json(feedback_form: Form) -> None:
    with pytest.raises(UnsupportedMediaTypeError) as raised:
        forms.parse(feedback_form, request(b"feedback=hi", "application/x-www-form-urlencoded"))
    assert raised.value.accepted == ["application/json"]


# -------------------------------------------------------------------------------------- honeypot


def test_public_form_with_a_filled_honeypot_is_spam(website_form: Form) -> None:
    submission = forms.Submission({"message": "Buy now", "email": "bot@spam.example", "website": "http://spam.example"})
    assert forms.is_spam(website_form, submission)


@pytest.mark.parametrize("honeypot", [None, "", "   \n"], ids=["absent", "empty", "blank"])
def test_public_form_with_an_empty_honeypot_is_not_spam(website_form: Form, honeypot: str | None) -> None:
    fields = {"message": "Hello", "email": "a@example.com"} | ({"website": honeypot} if honeypot is not None else {})
    assert not forms.is_spam(website_form, forms.Submission(fields))


def test_signed_form_is_never_spam_even_with_a_website_field(contact_form: Form) -> None:
    # Given a signed form (no honeypot) whose customer gave their website
    submission = forms.Submission({"message": "Hello", "email": "a@example.com", "website": "https://shop.example"})
    assert not forms.is_spam(contact_form, submission)


def test_secret_name_is_the_form_id_in_upper_snake_case() -> None:
    assert forms.secret_name("contact") == "FORM_CONTACT_SECRET"
    assert forms.secret_name("pre-sales") == "FORM_PRE_SALES_SECRET"


def test_body_is_parsed_as_sent_not_as_reserialized(contact_form: Form) -> None:
    # Given a JSON body with unusual spacing and escapes, When parsed, Then the values are the decoded ones
    body = b'{ "message" : "line1\\nline2 \\u00e9" ,"email":"a@example.com" }'
    assert forms.parse(contact_form, request(body, "application/json")).fields == {
        "message": "line1\nline2 é",
        "email": "a@example.com",
    }
    assert json.loads(body)["message"] == "line1\nline2 é"
