"""Who a customer is, written one way: phone numbers in E.164, email addresses trimmed and lower-cased.

Every channel hands its sender's number or address through here, so that the same person reaches the same
contact (`ID#phone#…`, `ID#email#…`) and a VIP listed in the policy is recognised on any channel. What differs
from one source to another is said by the caller, not written again:

- a number a provider gives (Twilio, WhatsApp) is international already and only has to be *possible*: a
  range newer than our metadata is still a customer; a WhatsApp id is the same digits without the `+`;
- a number a customer typed into a form is read in the team's region and must be *valid*: a typo is refused
  while the customer is still there to correct it.

`phonenumbers` is imported inside the functions: its metadata loads in tens of milliseconds, which a cold
start pays only on the paths that read a number (tests/unit/test_cold_imports.py).
"""

from __future__ import annotations

import re

from intake.model import EMAIL_PATTERN

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # the model's E164Phone
# A channel's or a URI's scheme before the number (`tel:+33…`, `whatsapp:+33…`, `sms:+33…`): never part of it
_SCHEME = re.compile(r"(?i)(?:tel|sms|whatsapp):")
_WA_ID = re.compile(r"\+?[0-9]+")
_MAX_ADDRESS_BYTES = 254  # RFC 5321's limit for a path
# Domains that name a machine or a site, never one mailbox in the world (RFC 6761, 6762, 8375; ICANN 2024)
_LOCAL_DOMAINS = ("localhost", "local", "localdomain", "internal", "home.arpa")
_MOBILE_TYPES = ("MOBILE", "FIXED_LINE_OR_MOBILE")


def phone(raw: str | None, *, region: str | None = None, valid: bool = False, bare_digits: bool = False) -> str | None:
    """The number in E.164 (`+33612345678`), None when `raw` is not one.

    `region` (ISO 3166, `FR`): a national number is read as one of that region's, and its international
    prefix (`00` in most of the world) as `+`; without it only the international form (`+…`) is a number.
    `valid`: the number must be assigned in our metadata, not merely of a possible length.
    `bare_digits`: `raw` is a WhatsApp id, the number's digits country code first, the `+` left out or not;
    nothing else.
    Otherwise spaces, dots, dashes, brackets, a `tel:`, `sms:` or `whatsapp:` scheme and non-ASCII digits are
    read as a person writes them. A short code (`3631`, `+3631`) is no one's number."""
    if raw is None:
        return None
    text = _SCHEME.sub("", raw.strip(), count=1).strip()
    if bare_digits:
        if not _WA_ID.fullmatch(text):
            return None
        text = "+" + text.lstrip("+")
    if region is None and not text.startswith("+"):
        return None
    import phonenumbers  # only on the paths that read a number

    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not (phonenumbers.is_valid_number(number) if valid else phonenumbers.is_possible_number(number)):
        return None
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return formatted if _E164.fullmatch(formatted) else None


def is_mobile(number: str) -> bool:
    """An E.164 number that can receive an SMS: a valid mobile number (or one its plan cannot tell from a landline)."""
    import phonenumbers  # only on the paths that read a number

    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    mobile = {getattr(phonenumbers.PhoneNumberType, name) for name in _MOBILE_TYPES}
    return phonenumbers.is_valid_number(parsed) and phonenumbers.number_type(parsed) in mobile


def email(raw: str | None, *, worldwide: bool = False) -> str | None:
    """The address as compared: trimmed, lower-cased, a fully qualified domain's last dot left out (`example.com.`
    is `example.com`); None unless it reads `local@domain.tld` in printable characters within RFC 5321's 254
    bytes. International names and quoted local parts are kept as written (`"jane.doe"@bücher.de`), and a domain's
    ASCII form read as the name it stands for (`xn--bcher-kva.de` is `bücher.de`: one customer, one contact); plus
    tags are kept too (`a+b@x.org` is not `a@x.org`).

    `worldwide`: only an address that names one mailbox in the world, as a contact identity must: not one on an
    IP literal or a local name (`guest@localhost`, `jane@corp.internal`, `user@[192.0.2.1]`). Every machine
    has its `guest@localhost`; taking it for an identity would make two customers one contact, each seeing the
    other's tickets. A missed link costs an agent a merge; a wrong one discloses a customer's mail."""
    if raw is None:
        return None
    candidate = raw.strip().lower().rstrip(".")
    if (
        not re.fullmatch(EMAIL_PATTERN, candidate)
        or not candidate.isprintable()
        or len(candidate.encode("utf-8", "surrogatepass")) > _MAX_ADDRESS_BYTES
    ):
        return None
    local, _, domain = candidate.rpartition("@")
    domain = _unicode_domain(domain)
    candidate = f"{local}@{domain}"
    if worldwide and (
        domain.startswith("[") or any(domain == local or domain.endswith("." + local) for local in _LOCAL_DOMAINS)
    ):
        return None
    return candidate


def contact(value: str, kind: str | None = None) -> tuple[str, str] | None:
    """`("email", address)` or `("phone", E.164)` as `email` and `phone` write them, None when `value` is
    neither: a VIP contact in the policy, a sender's identity. A phone must be in international form; a
    WhatsApp id (`kind` "wa_id" or "whatsapp") may leave out the `+`."""
    if kind == "email" or "@" in value:
        address = email(value)
        return ("email", address) if address is not None else None
    number = phone(value, bare_digits=kind in {"wa_id", "whatsapp"})
    return ("phone", number) if number is not None else None


def _unicode_domain(domain: str) -> str:
    """The domain with each of its IDNA `xn--` labels read back as the Unicode it encodes; a label that does not
    decode to printable non-ASCII characters (not an IDNA label) is kept as written."""
    labels = []
    for label in domain.split("."):
        if label.startswith("xn--"):
            try:
                decoded = label[4:].encode("ascii").decode("punycode").lower()
            except (UnicodeError, ValueError):
                decoded = label
            label = decoded if decoded.isprintable() and not decoded.isascii() else label
        labels.append(label)
    return ".".join(labels)


def ascii_domain(domain: str) -> str:
    """The domain as mail servers are given it: each label with non-ASCII characters in IDNA's `xn--` form
    (`bücher.de` -> `xn--bcher-kva.de`)."""
    return ".".join(
        label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii") for label in domain.split(".")
    )


def earlier_forms(identities: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
    """Each identity as Intake wrote it before it read IDNA domains as Unicode (`("email",
    "jorg@xn--bcher-kva.de")` for `jorg@bücher.de`), where that differs: the contacts made then are found by it."""
    found = {}
    for kind, value in identities:
        local, _, domain = value.rpartition("@")
        if kind == "email" and not domain.isascii():
            found[(kind, value)] = (kind, f"{local}@{ascii_domain(domain)}")
    return found
