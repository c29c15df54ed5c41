"""Phones and email addresses written one way (`intake.identity`): odd but legal input reaches the same identity,
and what is not a customer's number or mailbox is none."""

from __future__ import annotations

import pytest

from intake import identity

# ------------------------------------------------------------------------------------------------ phones


@pytest.mark.parametrize(
    "raw",
    [
        "+33612345678",
        "+33 6 12 34 56 78",
        "+33 (0)6-12-34-56-78",
        "+33.6.12.34.56.78",
        "  +33612345678\t",
        "tel:+33612345678",
        "TEL:+33 6 12 34 56 78",
        "whatsapp:+33612345678",
        "sms:+33612345678",
        "+\uff13\uff13\uff16\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",  # full-width digits
    ],
)
def test_an_international_number_as_people_write_it_is_one_e164_number(raw: str) -> None:
    assert identity.phone(raw) == "+33612345678"


@pytest.mark.parametrize("raw", ["0033612345678", "0612345678", "33612345678", "", "   ", "tel:"])
def test_without_a_region_only_the_international_form_is_a_number(raw: str) -> None:
    assert identity.phone(raw) is None


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("0033612345678", "FR"),  # the region's international prefix
        ("00 33 6 12 34 56 78", "FR"),
        ("011 33 6 12 34 56 78", "US"),
        ("06 12 34 56 78", "FR"),  # national form
        ("06-12-34-56-78", "FR"),
        ("\u0660\u0666\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668", "FR"),  # Arabic-Indic digits
        ("+33612345678", "US"),  # an international number whatever the region
    ],
)
def test_with_a_region_a_national_number_and_the_regions_prefix_are_read_as_its_own(raw: str, region: str) -> None:
    assert identity.phone(raw, region=region, valid=True) == "+33612345678"


@pytest.mark.parametrize(("raw", "region"), [("3631", "FR"), ("+3631", None), ("112", "FR"), ("15", "FR")])
def test_a_short_code_is_no_ones_number(raw: str, region: str | None) -> None:
    assert identity.phone(raw, region=region) is None


def test_a_possible_number_in_an_unassigned_range_is_a_providers_number_but_not_a_valid_one() -> None:
    unassigned = "+1 200 555 0100"  # a North American number of the right length: area code 200 is not allocated

    assert identity.phone(unassigned) == "+12005550100"
    assert identity.phone(unassigned, valid=True) is None


@pytest.mark.parametrize(
    "raw", ["+999 1234567", "+33 6", "+336123456789012345", "+", "Jane", "+33612345678@sip.example"]
)
def test_what_is_not_a_possible_number_is_none(raw: str) -> None:
    assert identity.phone(raw) is None


@pytest.mark.parametrize("raw", ["33612345678", "+33612345678", "whatsapp:33612345678"])
def test_a_whatsapp_id_is_a_number_with_or_without_its_plus(raw: str) -> None:
    assert identity.phone(raw, bare_digits=True) == "+33612345678"


@pytest.mark.parametrize(
    "raw", ["33 6 12 34 56 78", "336-1234-5678", "\uff13\uff13\uff16\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18"]
)
def test_a_whatsapp_id_is_plain_ascii_digits_and_nothing_else(raw: str) -> None:
    assert identity.phone(raw, bare_digits=True) is None


def test_no_number_is_none() -> None:
    assert identity.phone(None) is None


@pytest.mark.parametrize(
    ("number", "mobile"),
    [
        ("+33612345678", True),
        ("+447911123456", True),
        ("+12025550142", True),
        ("+33142685300", False),
        ("+3631", False),
    ],
)
def test_only_a_mobile_number_or_one_its_plan_cannot_tell_from_a_landline_can_be_texted(
    number: str, mobile: bool
) -> None:
    assert identity.is_mobile(number) is mobile


# ---------------------------------------------------------------------------------------- email addresses


@pytest.mark.parametrize(
    ("raw", "address"),
    [
        ("Jane@Example.COM", "jane@example.com"),
        ("  jane@example.com\n", "jane@example.com"),
        ("jane@example.com.", "jane@example.com"),  # a fully qualified domain
        ("a+b@x.org", "a+b@x.org"),  # a plus tag is another address
        ('"jane.doe"@example.com', '"jane.doe"@example.com'),  # a quoted local part
        ("Jane@BÜCHER.de", "jane@bücher.de"),  # an internationalized domain, as written
        ("jane@xn--bcher-kva.de", "jane@bücher.de"),  # its ASCII form: the same domain, the same contact
        ("jane@XN--Bcher-KVA.de", "jane@bücher.de"),
        ("jane@xn--strae-oqa.de", "jane@straße.de"),  # IDNA 2008's ß, not 2003's "strasse"
        ("jane@xn--abc-.com", "jane@xn--abc-.com"),  # decodes to ASCII: no IDNA label, kept as written
        ("jane@xn--zz.com", "jane@xn--zz.com"),  # no punycode at all
        ("JOSÉ@exemple.fr", "josé@exemple.fr"),  # an internationalized local part
    ],
)
def test_an_address_is_trimmed_and_lower_cased(raw: str, address: str) -> None:
    assert identity.email(raw) == address
    assert identity.email(raw, worldwide=True) == address


@pytest.mark.parametrize(
    "raw",
    [
        '"jane doe"@example.com',  # a quoted local part with a space
        "jane@exa",  # no top-level domain
        "jane.example.com",
        "jane@@example.com",
        "jane\u200b@example.com",  # an invisible character
        "a" * 250 + "@x.org",  # over RFC 5321's 254 bytes
        "",
    ],
)
def test_what_is_not_an_address_is_none(raw: str) -> None:
    assert identity.email(raw) is None


@pytest.mark.parametrize(
    "raw", ["guest@localhost.localdomain", "jane@corp.internal", "printer@office.local", "user@[192.0.2.1]"]
)
def test_an_address_on_a_local_name_or_an_ip_literal_is_an_address_but_no_identity(raw: str) -> None:
    assert identity.email(raw) == raw
    assert identity.email(raw, worldwide=True) is None


def test_no_address_is_none() -> None:
    assert identity.email(None) is None


# ---------------------------------------------------------------------------------------------- contacts


@pytest.mark.parametrize(
    ("value", "kind", "found"),
    [
        (" VIP@Example.com ", None, ("email", "vip@example.com")),
        ("vip@example.com", "email", ("email", "vip@example.com")),
        ("+33 6 12 34 56 78", None, ("phone", "+33612345678")),
        ("+33612345678", "phone", ("phone", "+33612345678")),
        ("33612345678", "wa_id", ("phone", "+33612345678")),
        ("33612345678", "whatsapp", ("phone", "+33612345678")),
        ("33612345678", None, None),  # digits without a plus are no one's number but a WhatsApp id
        ("0612345678", "phone", None),  # a contact's number is international
        ("Jane", None, None),
    ],
)
def test_a_contact_is_an_email_address_or_an_international_number(
    value: str, kind: str | None, found: tuple[str, str] | None
) -> None:
    assert identity.contact(value, kind) == found


@pytest.mark.parametrize(
    ("domain", "ascii"),
    [("bücher.de", "xn--bcher-kva.de"), ("straße.de", "xn--strae-oqa.de"), ("example.com", "example.com")],
)
def test_a_domain_goes_to_mail_servers_in_its_ascii_form_and_reads_back_the_same(domain: str, ascii: str) -> None:
    assert identity.ascii_domain(domain) == ascii
    assert identity.email(f"jane@{ascii}") == f"jane@{domain}"


def test_an_internationalized_domains_earlier_ascii_form_is_given_and_no_other() -> None:
    found = identity.earlier_forms(
        [("phone", "+33612345678"), ("email", "jorg@bücher.de"), ("email", "ana@example.org"), ("psid", "1:2")]
    )

    assert found == {("email", "jorg@bücher.de"): ("email", "jorg@xn--bcher-kva.de")}
    assert identity.email("jorg@xn--bcher-kva.de") == "jorg@bücher.de"  # and it reads back as the identity
