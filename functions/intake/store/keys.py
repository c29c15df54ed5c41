"""Every key of the single table, defined once: each item's partition and sort key, and the index keys a ticket
carries (see DESIGN.md, "Data"). The store builds its keys here and nowhere else; what else names an item (a state
machine's input, a reply's sort key, an IAM grant's leading keys) takes it from here too.

A prefix constant (`TICKET`, `BACKLOG`...) is what the keys of one kind begin with: what a query's `begins_with` or
a grant's `TICKET#*` pattern is made of. Timestamps in keys are `iso` text, so that they sort as they happened.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

# ---------------------------------------------------------------- the timestamp


def iso(moment: datetime) -> str:
    """Fixed-width UTC timestamp that sorts as text (`2026-11-23T18:33:46.123456Z`); an aware instant in another
    zone is converted first (`17:00+01:00` is `16:00Z`, not `17:00Z`)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------- a ticket's partition: `TICKET#<id>`

TICKET = "TICKET#"
META = "META"  # the ticket's (and the contact's) own item
MESSAGE = "MSG#"  # `MSG#<received at>#<provider>#<provider message id>`
EVENT = "EVT#"  # `EVT#<at>#<kind>[#<target or other>]`
TIMER = "SLA#"  # `SLA#<target>`, one per SLA target
REPLY_PROVIDER = "out"  # an agent's reply stands where an inbound message's provider does: `MSG#<at>#out#<id>`


def ticket_pk(ticket_id: str) -> str:
    return f"{TICKET}{ticket_id}"


def message_sk(received_at: datetime, provider: str, provider_message_id: str) -> str:
    return f"{MESSAGE}{iso(received_at)}#{provider}#{provider_message_id}"


def reply_sk(at: datetime, reply_id: str) -> str:
    return message_sk(at, REPLY_PROVIDER, reply_id)


def event_sk(at: datetime, kind: str, qualifier: str | None = None) -> str:
    """A history entry's sort key; `qualifier` (a clock's target, a merged contact) keeps two entries of one kind at
    one instant apart."""
    return f"{EVENT}{iso(at)}#{kind}" + ("" if qualifier is None else f"#{qualifier}")


def timer_sk(target: str) -> str:
    return f"{TIMER}{target}"


# ---------------------------------------------------------------- contacts, identities, threads

CONTACT = "CONTACT#"  # `CONTACT#<id>`/`META`, and its history: `EVT#...`
IDENTITY = "ID#"
IDENTITY_SK = "ID"
THREAD = "THREAD#"
THREAD_SK = "THREAD"
MESSAGE_ID = "MSGID#"  # an email Message-ID, recorded against its ticket
MESSAGE_ID_SK = "MSGID"
REFERENCE = "REF#"  # a ticket's short reference (`[#F770VB20]`)
REFERENCE_SK = "REF"


def contact_pk(contact_id: str) -> str:
    return f"{CONTACT}{contact_id}"


def identity_pk(kind: str, value: str) -> str:
    return f"{IDENTITY}{kind}#{value}"


def thread_pk(thread_key: str) -> str:
    return f"{THREAD}{thread_key}"


def message_id_pk(message_id: str) -> str:
    return f"{MESSAGE_ID}{message_id}"


def reference_pk(reference: str) -> str:
    return f"{REFERENCE}{reference}"


# ---------------------------------------------------------------- once-only records and claims

SEEN = "SEEN#"  # a provider's message (or callback) already taken in
SEEN_SK = "SEEN"
TOKEN = "TOKEN#"  # noqa: S105 - `TOKEN#<scope>#<token>`: a one-time claim, not a secret
TOKEN_SK = "TOKEN"  # noqa: S105 - a sort key
ACK_RATE = "ACKRATE#"  # `ACKRATE#<sender>#<UTC hour>`: acknowledgments sent from an address this hour
ACK_RATE_SK = "ACKRATE"
SUPPRESSED = "SUPPRESSED#"  # an address mail is no longer sent to
SUPPRESSED_SK = "SUPPRESSED"
CALL = "CALL#"  # a phone call's state, folded from its callbacks
CALL_SK = "CALL"


def seen_pk(provider: str, provider_message_id: str) -> str:
    return f"{SEEN}{provider}#{provider_message_id}"


def token_pk(scope: str, token: str) -> str:
    return f"{TOKEN}{scope}#{token}"


def ack_rate_pk(sender: str, hour: str) -> str:
    return f"{ACK_RATE}{sender}#{hour}"


def suppressed_pk(address: str) -> str:
    return f"{SUPPRESSED}{address}"


def call_pk(call_sid: str) -> str:
    return f"{CALL}{call_sid}"


# ---------------------------------------------------------------- quarantine, failures

QUARANTINE = "QUARANTINE"  # one partition; SK: the held email's id
FAILURE = "FAIL#"  # `FAIL#<queue>`; SK: the queue message's id


def failure_pk(queue: str) -> str:
    return f"{FAILURE}{queue}"


# ---------------------------------------------------------------- satisfaction surveys

SURVEY = "SURVEY#"  # a contact's one survey per period
SURVEY_SK = "SURVEY"
CSAT = "CSAT#"  # a ticket's answer
CSAT_SK = "CSAT"
SURVEY_DAY = "SURVEYDAY#"  # `SURVEYDAY#<team>#<local date>`/`<at>#<ticket id>`: a survey sent
CSAT_DAY = "CSATDAY#"  # `CSATDAY#<team>#<local date>`/`<at>#<ticket id>`: a score received


def survey_pk(contact_id: str) -> str:
    return f"{SURVEY}{contact_id}"


def csat_pk(ticket_id: str) -> str:
    return f"{CSAT}{ticket_id}"


def survey_day_pk(team: str, day: date) -> str:
    return f"{SURVEY_DAY}{team}#{day.isoformat()}"


def csat_day_pk(team: str, day: date) -> str:
    return f"{CSAT_DAY}{team}#{day.isoformat()}"


def day_sk(at: datetime, ticket_id: str) -> str:
    """The sort key of a team's day items (surveys sent, scores received): in the order they happened."""
    return f"{iso(at)}#{ticket_id}"


def day_sk_instant(sk: str) -> datetime:
    """When a day item (`day_sk`) happened."""
    return datetime.fromisoformat(sk.partition("#")[0])


# ---------------------------------------------------------------- replies

REPLY_KEY = "REPLYKEY#"  # `REPLYKEY#<ticket>#<Idempotency-Key>`: the reply a request made
REPLY_KEY_SK = "REPLYKEY"
ROUTE = "OUT#"  # `OUT#<provider>#<provider message id>`: the reply a provider's status report is about
ROUTE_SK = "OUT"
HELD_SK = "HELD"  # beside a route: a status report that came before its message was recorded as sent


def reply_key_pk(ticket_id: str, key: str) -> str:
    return f"{REPLY_KEY}{ticket_id}#{key}"


def route_pk(provider: str, provider_message_id: str) -> str:
    return f"{ROUTE}{provider}#{provider_message_id}"


# ---------------------------------------------------------------- a team's open queue

BACKLOG = "BACKLOG#"  # a team's backlog counters: `BACKLOG#<team>`/`BACKLOG` (see `BacklogStore.backlog`)
BACKLOG_SK = "BACKLOG"


def backlog_pk(team: str) -> str:
    return f"{BACKLOG}{team}"


# ---------------------------------------------------------------- the index keys a ticket carries


def created_key(created_at: datetime, ticket_id: str) -> str:
    """`by_team`'s sort key (newest first): the ticket's creation, then its id."""
    return f"{iso(created_at)}#{ticket_id}"


def team_day(team: str, day: date) -> str:
    """`by_day`'s partition key: the team and its local date of the ticket's creation."""
    return f"{team}#{day.isoformat()}"


def due_key(ticket_id: str, next_due_at: datetime | None, created_at: datetime) -> str:
    """`open_by_due`'s sort key: by the earliest deadline, or, with none, after every deadline ("~" sorts after
    digits), oldest first."""
    if next_due_at is None:
        return f"~#{iso(created_at)}#{ticket_id}"
    return f"{iso(next_due_at)}#{ticket_id}"


def due_key_bound(moment: datetime) -> str:
    """Past every `due_key` of a deadline at `moment` (a query's upper bound that includes them)."""
    return f"{iso(moment)}#~"


def day_start_due_key(day: date) -> str:
    """Before every `due_key` of a deadline on `day` (UTC)."""
    return f"{day.isoformat()}T00:00:00.000000Z"


def wait_key(breached: bool, last_inbound_at: str, ticket_id: str) -> str:
    """`open_by_wait`'s sort key: breached first, then the longest waiting (the oldest last customer message, an
    `iso` text); present with the queue position, on the tickets the backlog counters hold."""
    return f"{0 if breached else 1}#{last_inbound_at}#{ticket_id}"
