"""`forms.to_inbound` and `forms.content_id`: from a form's fields to the message the ingest core takes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake.channels import forms
from intake.config import Policy
from intake.errors import FieldInvalidError
from intake.model import Attachment, Channel, Priority

from .builders import RECEIPT_ID, RECEIVED_AT, map_fields

CONTACT = {
    "name": "Camille Durand",
    "email": "Camille.Durand+orders@Example.ORG",
    "phone": "06 12 34 56 78",
    "subject": "Order 1042 arrived damaged",
    "message": "The vase arrived broken.",
    "priority": "high",
    "order_number": "1042",
}
SCREENSHOT = Attachment(
    filename="invoice.png",
    content_type="image/png",
    size=68,
    sha256="0" * 64,
    s3_key="attachments/2026/11/23/x/1-invoice.png",
)


def test_signed_form_maps_to_an_inbound_form_message(policy: Policy) -> None:
    # Given the contact form's fields as its backend posts them
    # When they are mapped
    message = map_fields(policy, "contact", CONTACT)
    # Then the sender is normalized, the mapped fields land on the message, and the rest is metadata
    assert message.channel == Channel.FORM
    assert message.provider == forms.PROVIDER
    assert message.team == "support"
    assert message.sender.name == "Camille Durand"
    assert message.sender.email == "camille.durand+orders@example.org"
    assert message.sender.phone == "+33612345678"
    assert message.subject == "Order 1042 arrived damaged"
    assert message.text == "The vase arrived broken."
    assert message.priority is Priority.HIGH
    assert message.metadata == {"form_id": "contact", "fields": {"order_number": "1042"}}
    assert (message.receipt_id, message.received_at) == (RECEIPT_ID, RECEIVED_AT)
    assert message.provider_message_id == forms.content_id("contact", forms.Submission(CONTACT))
    assert message.thread_key == f"form#contact#{message.provider_message_id}"
    assert message.dedupe_window_s == policy.forms["contact"].dedupe_window_s


def test_public_form_uses_its_own_field_names(policy: Policy) -> None:
    # Given the website form, which calls the name `full_name` and the subject `topic`
    fields = {"full_name": "Jonas Weber", "email": "jonas@example.net", "topic": "Login", "message": "Help"}
    message = map_fields(policy, "website", fields | {"website": ""})
    assert (message.sender.name, message.subject, message.text) == ("Jonas Weber", "Login", "Help")


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("06 12 34 56 78", "+33612345678"),  # national French number: the team's region is FR
        ("06.12.34.56.78", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("0033612345678", "+33612345678"),
        ("+81 90-1234-5678", "+819012345678"),  # an explicit country code wins over the region
        ("+1 (415) 555-2671", "+14155552671"),
    ],
)
def test_phone_is_normalized_to_e164_with_the_teams_default_region(policy: Policy, raw: str, e164: str) -> None:
    assert policy.teams["support"].default_region == "FR"
    message = map_fields(policy, "contact", {"message": "Call me", "phone": raw})
    assert message.sender.phone == e164


def test_email_is_lower_cased_and_keeps_its_plus_tag(policy: Policy) -> None:
    message = map_fields(policy, "contact", {"message": "hi", "email": "  Ana+Support@Example.COM "})
    assert message.sender.email == "ana+support@example.com"


def test_custom_fields_are_kept_as_metadata(policy: Policy) -> None:
    fields = {"message": "hi", "email": "a@example.com", "order_number": "1042", "plan": "pro", "empty": ""}
    message = map_fields(policy, "contact", fields)
    assert message.metadata["fields"] == {"order_number": "1042", "plan": "pro", "empty": ""}


def test_honeypot_is_not_kept_as_metadata(policy: Policy) -> None:
    fields = {
        "full_name": "A",
        "email": "a@example.com",
        "message": "hi",
        "website": "",
        "referral": "friend",
    }
    message = map_fields(policy, "website", fields)
    assert message.metadata["fields"] == {"referral": "friend"}


@pytest.mark.parametrize(
    ("raw", "priority"),
    [(None, Priority.NORMAL), ("", Priority.NORMAL), ("low", Priority.LOW), (" URGENT ", Priority.URGENT)],
)
def test_priority_is_read_case_insensitively_with_the_forms_default(
    policy: Policy, raw: str | None, priority: Priority
) -> None:
    fields = {"message": "hi", "email": "a@example.com"} | ({"priority": raw} if raw is not None else {})
    assert map_fields(policy, "contact", fields).priority is priority


def test_invalid_priority_is_rejected_naming_the_field(policy: Policy) -> None:
    with pytest.raises(FieldInvalidError) as raised:
        map_fields(policy, "contact", {"message": "hi", "email": "a@example.com", "priority": "asap"})
    assert raised.value.field == "priority"
    assert "low, normal, high, urgent" in raised.value.reason


@pytest.mark.parametrize(
    ("form_id", "fields", "field"),
    [
        ("contact", {"email": "a@example.com"}, "message"),
        ("contact", {"email": "a@example.com", "message": "  \n"}, "message"),
        ("feedback", {"customer_email": "a@example.com"}, "feedback"),  # Typeform: the field's ref
    ],
    ids=["absent", "blank", "typeform-ref"],
)
def test_missing_message_is_rejected_naming_the_forms_field(
    policy: Policy, form_id: str, fields: dict[str, str], field: str
) -> None:
    with pytest.raises(FieldInvalidError) as raised:
        map_fields(policy, form_id, fields)
    assert (raised.value.field, raised.value.reason) == (field, "is required")


def test_attachments_alone_are_a_message(policy: Policy) -> None:
    message = map_fields(policy, "contact", {"email": "a@example.com"}, attachments=(SCREENSHOT,))
    assert (message.text, message.attachments) == ("", (SCREENSHOT,))


@pytest.mark.parametrize("fields", [{"message": "hi"}, {"message": "hi", "email": " ", "phone": ""}])
def test_neither_email_nor_phone_is_rejected(policy: Policy, fields: dict[str, str]) -> None:
    with pytest.raises(FieldInvalidError) as raised:
        map_fields(policy, "contact", fields)
    assert raised.value.field == "email"
    assert "email or a phone number is required" in raised.value.reason


@pytest.mark.parametrize(
    "email",
    [
        "camille",
        "camille@",
        "@example.org",
        "camille@example",
        "ca mille@example.org",
        "a@@example.org",
        "a@.org",
    ],
)
def test_invalid_email_is_rejected_naming_the_forms_field(policy: Policy, email: str) -> None:
    with pytest.raises(FieldInvalidError) as raised:
        map_fields(policy, "feedback", {"feedback": "hi", "customer_email": email})
    assert raised.value.field == "customer_email"


@pytest.mark.parametrize("phone", ["12", "06 12", "call me maybe", "+33 6 12 34 56 78 90 12", "+999 123456789"])
def test_invalid_phone_is_rejected_naming_the_field(policy: Policy, phone: str) -> None:
    with pytest.raises(FieldInvalidError) as raised:
        map_fields(policy, "contact", {"message": "hi", "phone": phone})
    assert (raised.value.field, raised.value.reason) == ("phone", "is not a valid phone number")


def test_name_too_long_is_rejected_naming_the_forms_field(policy: Policy) -> None:
    fields = {"full_name": "x" * 201, "email": "a@example.com", "message": "hi"}
    with pytest.raises(FieldInvalidError) as raised:
        map_fields(policy, "website", fields)
    assert raised.value.field == "full_name"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"full_name": "A", "email": "a@example.com", "message": "hi", "topic": "s" * 999}, "topic"),
        ({"full_name": "A", "email": "a@example.com", "message": "m" * 100_001}, "message"),
    ],
    ids=["subject-over-998", "message-over-100000"],
)
def test_text_over_the_models_limits_is_rejected_naming_the_forms_field(
    policy: Policy, fields: dict[str, str], field: str
) -> None:
    # Given a public form post within the 4 MiB body limit, but with a subject or message longer than
    # a message may be, When it is mapped, Then it is a 400 naming the form's field, not an unexpected 500
    with pytest.raises(FieldInvalidError) as raised:
        map_fields(policy, "website", fields)
    assert raised.value.field == field


def test_typeform_submission_maps_with_its_token_and_long_dedupe_window(policy: Policy) -> None:
    fields = {
        "customer_name": "Sam",
        "customer_email": "sam@example.com",
        "feedback": "Crashes",
        "platform": "Android",
    }
    message = map_fields(policy, "feedback", fields, submission_id="typeform-tok-42")
    assert message.provider_message_id == "typeform-tok-42"
    assert message.thread_key == "form#feedback#typeform-tok-42"
    assert message.dedupe_window_s == 8 * 86400
    assert message.metadata["fields"] == {"platform": "Android"}


_VALUES = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"[a-z0-9.+_-]{1,12}@[a-z0-9-]{1,10}\.[a-z]{2,4}", fullmatch=True),
    st.from_regex(r"\+?[0-9 ().-]{2,18}", fullmatch=True),
    st.sampled_from(["low", "HIGH", " urgent ", "normal"]),
)
_NAMES = st.sampled_from(["name", "email", "phone", "subject", "message", "priority", "order", "website"])


@given(fields=st.dictionaries(_NAMES, _VALUES, max_size=8))
def test_any_submitted_fields_map_to_a_message_or_a_field_problem(policy: Policy, fields: dict[str, str]) -> None:
    # Given whatever a client sends, When mapped, Then the outcome is a message or a 400 naming a field
    try:
        message = map_fields(policy, "contact", fields)
    except FieldInvalidError as error:
        assert error.field in {"name", "email", "phone", "subject", "message", "priority"}
    else:
        assert message.sender.email or message.sender.phone
        assert message.text.strip()


# ------------------------------------------------------------------------------------ content_id

_FIELDS = st.dictionaries(st.text(max_size=12), st.text(max_size=30), min_size=1, max_size=8)


@given(fields=_FIELDS)
def test_content_id_is_the_same_for_the_same_content_in_any_order(fields: dict[str, str]) -> None:
    # Given a double-clicked submit, its fields possibly serialized in another order
    reordered = dict(reversed(list(fields.items())))
    first = forms.content_id("contact", forms.Submission(fields))
    # Then both submissions have one id, a sha256 the dedupe record and SQS accept
    assert first == forms.content_id("contact", forms.Submission(reordered))
    assert first == forms.content_id("contact", forms.Submission(dict(fields)))
    assert first.startswith("sha256-") and len(first) == len("sha256-") + 64


@given(fields=_FIELDS, data=st.data())
def test_content_id_differs_when_any_field_value_differs(fields: dict[str, str], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(fields)))
    other = data.draw(st.text(max_size=30).filter(lambda value: value != fields[name]))
    changed = fields | {name: other}
    assert forms.content_id("contact", forms.Submission(fields)) != forms.content_id(
        "contact", forms.Submission(changed)
    )


@given(fields=_FIELDS, data=st.data())
def test_content_id_differs_when_a_field_is_added_or_removed(fields: dict[str, str], data: st.DataObject) -> None:
    name = data.draw(st.text(max_size=12).filter(lambda key: key not in fields))
    value = data.draw(st.text(max_size=30))
    base = forms.content_id("contact", forms.Submission(fields))
    assert base != forms.content_id("contact", forms.Submission(fields | {name: value}))
    removed = dict(list(fields.items())[1:])
    assert base != forms.content_id("contact", forms.Submission(removed))


@given(fields=_FIELDS)
def test_content_id_differs_between_forms(fields: dict[str, str]) -> None:
    submission = forms.Submission(fields)
    assert forms.content_id("contact", submission) != forms.content_id("website", submission)


@given(fields=_FIELDS, first=st.binary(max_size=64), second=st.binary(max_size=64))
def test_content_id_depends_on_file_contents_not_their_order(
    fields: dict[str, str], first: bytes, second: bytes
) -> None:
    one, two = (
        forms.UploadedFile("a", "a.txt", "text/plain", first),
        forms.UploadedFile("b", "b.txt", "text/plain", second),
    )
    both = forms.content_id("contact", forms.Submission(fields, [one, two]))
    assert both == forms.content_id("contact", forms.Submission(fields, [two, one]))
    assert both != forms.content_id("contact", forms.Submission(fields, [one]))
    assert both != forms.content_id("contact", forms.Submission(fields))


def test_content_id_is_the_providers_id_when_it_has_one() -> None:
    submission = forms.Submission({"message": "hi"}, submission_id="typeform-tok-42")
    assert forms.content_id("feedback", submission) == "typeform-tok-42"


def test_content_id_is_stable_across_processes() -> None:
    # A dedupe key must not depend on hash randomization: the same content has this id on every run.
    # printf '%s' '{"fields": {"email": "a@example.com", "message": "hi"}, "files": [], "form": "contact"}' \
    #   | openssl dgst -sha256
    submission = forms.Submission({"message": "hi", "email": "a@example.com"})
    expected = "sha256-884e34618259c559f837f6074e39eda6965a8ad26bb9208d3424f453c069b9fb"
    assert forms.content_id("contact", submission) == expected
