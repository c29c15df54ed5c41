"""What a process builds once, at cold start: settings, policy, the ports' adapters.

In AWS the adapters are boto3's (DynamoDB, S3, SQS, Step Functions, SES, EventBridge); with `INTAKE_DATA_DIR`
set (`intake serve`) they are the local ones in that folder (`intake.local.adapters`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, cast

import boto3

from intake.config import Policy, Settings
from intake.policy import load_policy
from intake.secrets import Secrets

# Each adapter's module is imported where the adapter is built, as `archive` and `timers` are: a function imports
# what its own requests use (the receiver needs no mailer, and a store only for Mailgun's token claims). What every
# function's first request uses (settings, policy, secrets) is imported here.
if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from intake.archive import Archive
    from intake.bus import EventBus
    from intake.channels.contract import WorkerContext
    from intake.channels.sending import SendContext
    from intake.digest.publish import Outlets, Published
    from intake.digest.requests import DigestRequests, Requested
    from intake.emails import EmailStores
    from intake.inbox import Inbox
    from intake.local.adapters import LocalAdapters
    from intake.model import Attachment, CallEvent, InboundMessage
    from intake.notify.mailer import Mailer
    from intake.queues import DeadLetters, Queue
    from intake.replies import Accepted, ReplyRequest
    from intake.satisfaction import SurveyDelivery, Surveys
    from intake.sla.timers import TimerControl
    from intake.sla.tracker import Tracker
    from intake.store import Store


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def policy() -> Policy:
    loaded = load_policy(settings().config)
    if settings().data_dir is None or loaded.notifications.ticket_url is not None:
        return loaded
    # `intake serve` always has its console: an email's link opens the ticket's page there
    links = loaded.notifications.model_copy(update={"ticket_url": loaded.notifications.CONSOLE_TICKET_URL})
    return loaded.model_copy(update={"notifications": links})


@cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()


def client(service: str) -> Any:
    return _clients(service)


def region() -> str:
    """The AWS region this runs in (the session's: AWS_REGION in Lambda)."""
    return str(_session().region_name)


@cache
def _clients(service: str) -> Any:
    return _session().client(service)  # type: ignore[call-overload]


@cache
def local() -> LocalAdapters | None:
    """The local adapters when this process runs `intake serve` (INTAKE_DATA_DIR), else None."""
    data_dir = settings().data_dir
    if data_dir is None:
        return None
    from intake.local.adapters import open_adapters

    return open_adapters(data_dir, settings().table_name, settings().visibility_timeout_s)


@cache
def store() -> Store:
    from intake.store import Store

    here = local()
    if here is None:
        return Store(client("dynamodb"), settings().table_name)
    # SqliteTable implements the DynamoDB item calls Store makes (the table port), with DynamoDB's semantics
    return Store(cast("DynamoDBClient", here.table), settings().table_name)


@cache
def archive() -> Archive:
    from intake.archive import S3Archive

    here = local()
    return S3Archive(client("s3"), settings().bucket_name) if here is None else here.archive


@cache
def inbox() -> Inbox:
    from intake.inbox import Inbox
    from intake.queues import SqsQueue

    here = local()
    return Inbox(archive(), SqsQueue(client("sqs"), settings().inbound_queue_url) if here is None else here.inbound)


@cache
def dead_letter_queues() -> dict[str, DeadLetters]:
    """Each queue whose dead letters `/failures` lists and replays: locally every one; in AWS those whose queue and
    dead-letter queue URLs are set (the API function's)."""
    from intake.queues import SqsQueue
    from intake.resources import QUEUES

    here = local()
    if here is not None:
        queues: dict[str, DeadLetters] = dict(here.queues)
        return queues
    urls = settings().model_dump()
    return {
        spec.name: SqsQueue(client("sqs"), urls[f"{spec.name}_queue_url"], urls[f"{spec.name}_dlq_url"])
        for spec in QUEUES
        if urls[f"{spec.name}_queue_url"] and urls[f"{spec.name}_dlq_url"]
    }


@cache
def bus() -> EventBus | None:
    """Intake's event bus (DigestPublished, SurveyRequested); None where there is none."""
    from intake.bus import EventBridgeBus

    here = local()
    if here is not None:
        return here.bus
    name = settings().event_bus_name
    return EventBridgeBus(client("events"), name) if name else None


@cache
def digest_requests() -> DigestRequests:
    """Where `POST /digests/...` hands a digest: the digest function (INTAKE_DIGEST_FUNCTION_NAME, asynchronously);
    where there is none (`intake serve`), publishing in this process."""
    from intake.digest.requests import LambdaDigestRequests, PublishHere

    name = settings().digest_function_name
    if name and local() is None:
        return LambdaDigestRequests(client("lambda"), name)
    return PublishHere(_publish_here)


def _publish_here(requested: Requested) -> Published:
    from intake.digest.publish import publish

    now, base_url = utc_now(), settings().public_base_url
    period, start = requested.period, requested.start
    return publish(store(), mailer(), outlets(), policy(), requested.team, period, start, base_url=base_url, now=now)


def outlets() -> Outlets:
    """Where a published digest goes besides the mail."""
    from intake.digest.publish import Outlets

    return Outlets(archive(), bus())


@cache
def secrets() -> Secrets:
    """The secret values this function was given: the webhook signing secrets, and those held apart."""
    from intake.secrets import HELD_APART

    given = settings().model_dump()
    apart = {name: given[field] for name, field in HELD_APART.items()} | settings().channel_secrets
    return Secrets(secrets_arn=settings().secrets_arn, apart=apart)


def prepare_call(event: CallEvent) -> CallEvent:
    """The worker step of a phone call's callback (`Channel.prepare_call`: Twilio's recording archived), if any."""
    from intake.channels import registry

    step = registry.channel(event.provider).prepare_call
    if step is None:
        return event

    def is_new() -> bool:  # asked only when there is work to do
        return store().seen(event.provider, event.event_id) is None

    return step(event, _worker_context(is_new))


def prepare(message: InboundMessage, is_new: Callable[[], bool]) -> InboundMessage:
    """The worker step of the message's channel (`Channel.prepare`: WhatsApp's media, Messenger's names), if any."""
    from intake.channels import registry

    step = registry.channel(message.provider).prepare
    if step is None:
        return message
    return step(message, _worker_context(is_new))


def _worker_context(is_new: Callable[[], bool]) -> WorkerContext:
    from intake.channels.contract import WorkerContext

    return WorkerContext(policy(), send_context(), inbox().store_attachment, is_new)


def email_stores() -> EmailStores:
    """What the email path needs besides the table: the archive, the mailer (acknowledgments), the clock. The
    acknowledgment's claim checks that its one recipient is not suppressed (`Store.claim_acknowledgment`), in the
    write it makes anyway: its mailer is the sender itself, without `SuppressingMailer`'s read."""
    from intake.emails import EmailStores

    box = inbox()
    return EmailStores(read=box.read, put_attachment=box.store_attachment, mailer=_sender(), clock=utc_now)


@cache
def sender_queue() -> Queue:
    """Where the API queues agents' replies for the sender (`intake.replies`)."""
    from intake.queues import SqsQueue
    from intake.resources import SENDER_QUEUE

    here = local()
    if here is not None:
        return here.queues[SENDER_QUEUE.name]
    return SqsQueue(client("sqs"), settings().sender_queue_url)


def accept_reply(ticket_id: str, request: ReplyRequest, key: str | None) -> Accepted:
    """An agent's reply (the API's or the console's) recorded on its ticket and queued for the sender."""
    from intake.ids import new_id
    from intake.replies import accept

    box = inbox()
    return accept(
        store(), sender_queue(), box.store_attachment, policy(), ticket_id, request, key, new_id=new_id, now=utc_now()
    )


def send_context() -> SendContext:
    """What the channels' `send` need: secrets, the providers' API roots, the mailer, the archive, media links."""
    from intake.channels.sending import SendContext

    config = policy().section("whatsapp")
    graph = settings().graph_api_url or (config.graph_api_url if config else "https://graph.facebook.com/v21.0")
    return SendContext(
        secret=secrets().get,
        public_base_url=settings().public_base_url,
        twilio_api_url=settings().twilio_api_url,
        graph_api_url=graph,
        mailer=mailer(),
        read=archive().get,
        media_url=_media_link,
        clock=utc_now,
    )


def _media_link(attachment: Attachment) -> str | None:
    """A link a provider can fetch a reply's file from for an hour: S3's presigned URL, or a signed local one."""
    if attachment.s3_key is None:
        return attachment.url
    here = local()
    if here is not None:
        from intake.local.links import link

        return link(settings().public_base_url, here.data_dir, attachment.s3_key)
    url: str = client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": settings().bucket_name, "Key": attachment.s3_key}, ExpiresIn=3600
    )
    return url


def utc_now() -> datetime:
    return datetime.now(UTC)


@cache
def mailer() -> Mailer:
    """Where email goes (`_sender`), never to a suppressed address (a hard bounce or a complaint came back)."""
    from intake.notify.mailer import SuppressingMailer

    return SuppressingMailer(_sender(), lambda address: store().is_suppressed(address))


@cache
def _sender() -> Mailer:
    """Locally (INTAKE_OUTBOX set), the outbox folder; in AWS, SES with the stack's configuration set."""
    from intake.notify.mailer import OutboxMailer, SesMailer

    folder = settings().outbox
    if folder is not None:
        return OutboxMailer(folder)
    ses = client("ses")
    return SesMailer(ses, ses.meta.region_name, settings().ses_configuration_set)


@cache
def timers() -> TimerControl:
    """The SLA state machine's executions; a process without one (INTAKE_STATE_MACHINE_ARN unset) starts none."""
    from intake.sla.timers import NoTimers, Timers

    here = local()
    if here is not None:
        return here.sla_timers()
    arn = settings().state_machine_arn
    return Timers(client("stepfunctions"), arn) if arn else NoTimers()


def tracker() -> Tracker:
    from intake.sla.tracker import Tracker

    return Tracker(store(), timers(), policy(), surveys())


@cache
def later() -> TimerControl | None:
    """The deliver-later state machine's executions (delayed surveys); None without INTAKE_LATER_MACHINE_ARN."""
    from intake.sla.timers import Timers

    here = local()
    if here is not None:
        return here.later()
    arn = settings().later_machine_arn
    return Timers(client("stepfunctions"), arn) if arn else None


def surveys() -> Surveys:
    """Plans satisfaction surveys when tickets are resolved."""
    from intake.satisfaction import Surveys

    return Surveys(store(), later(), policy())


def survey_delivery() -> SurveyDelivery:
    """What the notifier needs to send surveys: the table, the link secret (CSAT_SECRET), Intake's event bus."""
    from intake.satisfaction import SECRET_NAME, SurveyDelivery

    return SurveyDelivery(store(), secrets().get(SECRET_NAME), bus())


def csat_secret() -> str | None:
    """The secret survey links are signed with (CSAT_SECRET; INTAKE_CSAT_SECRET locally)."""
    from intake.satisfaction import SECRET_NAME

    return secrets().get(SECRET_NAME)


def reset() -> None:
    """Forget everything built, so the next call reads the environment again (a new process, in effect)."""
    for built in (settings, policy, _session, _clients, local, store, archive, inbox, bus, secrets, mailer):
        built.cache_clear()
    _sender.cache_clear()
    dead_letter_queues.cache_clear()
    digest_requests.cache_clear()
    timers.cache_clear()
    later.cache_clear()
    sender_queue.cache_clear()
