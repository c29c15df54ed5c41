"""`intake`: run the pipeline locally, try it with the samples, read tickets, replay failures, export schemas."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlencode

from intake.config import ConfigError, Policy
from intake.policy import load_policy

DEFAULT_URL = "http://127.0.0.1:8080"
DEMO_NEWEST_AGO_S = 5 * 60


def _demo_secrets(policy: Policy) -> dict[str, str]:
    """A made-up value for each secret the policy's channels check requests with, which the demo signs its samples
    with, and the survey links'. No channel API credential: offline, the demo calls no provider (WhatsApp media stay
    pending, Messenger names unasked)."""
    from intake.channels import registry

    keys = [
        key
        for channel in registry.channels()
        if (section := policy.section(channel.section)) is not None
        for key in channel.webhook_secrets(section)
    ]
    return {f"INTAKE_{key}": "demo-" + key.lower().replace("_", "-") for key in [*keys, "CSAT_SECRET"]}


def _demo_samples() -> list[str]:
    """Every channel's samples folder, in the registry's order (SendGrid and Mailgun share `email/`)."""
    from intake.channels import registry

    return list(dict.fromkeys(f"{c.samples}/*.json" for c in registry.channels() if c.samples))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # `intake tickets list | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit would fail again
        return 0
    except ConfigError as error:
        print(f"intake: {error.source} is invalid:", file=sys.stderr)
        for line in error.errors:
            print(f"  {line}", file=sys.stderr)
        return 2
    except urllib.error.HTTPError as error:  # the API's problem+json: say what it says
        problem = json.loads(error.read() or b"{}")
        print(f"intake: {problem.get('title', error)}: {problem.get('detail', '')}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, ConnectionError) as error:
        print(f"intake: cannot reach the API: {error}", file=sys.stderr)
        return 1


def _at_least_one(value: str) -> int:
    """An argument that counts processes: a whole number, 1 or more (argparse names the option in its error)."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of processes, 1 or more")
    return number


def _config_path(value: str | None) -> Path:
    return Path(value or os.environ.get("INTAKE_CONFIG") or "intake.yaml")


# ------------------------------------------------------------------ commands


def _serve(args: argparse.Namespace) -> int:
    from intake.local.server import HostUnprotectedError, serve

    token = args.agent_token or os.environ.get("INTAKE_AGENT_TOKEN") or None
    try:
        return serve(
            args.host,
            args.port,
            Path(args.data_dir),
            _config_path(args.config),
            smtp_port=args.smtp_port,
            agent_token=token,
            **({"http_processes": args.http_processes} if args.http_processes else {}),
        )
    except HostUnprotectedError as error:
        print(f"intake serve: {error}", file=sys.stderr)
        return 2


def _demo(args: argparse.Namespace) -> int:
    from intake.local import samples
    from intake.secrets import Secrets

    config = _config_path(args.config)
    policy = load_policy(config)
    env = {**_demo_secrets(policy), **os.environ}
    env.pop("INTAKE_PUBLIC_BASE_URL", None)  # the demo server's own URL is what the samples are signed for
    files = [path for pattern in _demo_samples() for path in sorted(Path(args.events).glob(pattern))]
    if not files:
        print(f"intake demo: no samples under {args.events}/ ({', '.join(_demo_samples())})", file=sys.stderr)
        return 1
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="intake-demo-"))
    env["INTAKE_OUTBOX"] = str((data_dir / "outbox").resolve())  # where the demo's digest is looked for
    process, url = _start_server(config, data_dir, env)
    try:
        secrets = Secrets(environ=env)
        expected = 0
        loaded = [samples.load(path) for path in files]
        # Dated as if each channel's newest had come in a few minutes ago, and its others over the hours before it
        # (the files' own dates are fixed): some clocks are running, some near a warning, the urgent ones breached.
        newest: dict[str, int] = {}
        for path, sample in zip(files, loaded, strict=True):
            for at in samples.provider_times(sample):
                newest[path.parent.name] = max(at, newest.get(path.parent.name, at))
        now = int(time.time()) - DEMO_NEWEST_AGO_S
        print(f"posting {_count(len(files), 'sample')} to {url}")
        for path, sample in zip(files, loaded, strict=True):
            shift = now - newest[path.parent.name] if path.parent.name in newest else 0
            prepared = samples.prepare(samples.moved(sample, shift), policy, secrets, public_base_url=url)
            sent = samples.send(url, prepared)
            creates = sample.get("expect_ticket", True)
            expected += 1 if creates else 0
            print(f"  {sent.status} {path.name}: {sample.get('description', '')}")
            if sent.status != sample.get("expect_status", 202):
                print(f"intake demo: {path.name} answered {sent.status}: {sent.body}", file=sys.stderr)
                return 1
        tickets = _wait_for_tickets(url, expected, timeout=90)
        answered = _demo_answers(url, tickets)
        tickets = _all_tickets(url)
        print()
        print(_table(tickets))
        print(f"\n{_count(len(tickets), 'ticket')} ({answered} answered by the demo); data in {data_dir}")
        digests = _demo_digests(url, policy, data_dir / "outbox")
        failed = _demo_failures(url, data_dir / "serve.log")
        status = 0 if len(tickets) >= expected and digests and not failed else 1
        if args.serve:
            print(f"\nserving {url} until Ctrl-C: open {url}/ for the console (data in {data_dir})", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                process.wait()
        else:
            print(f"\nto look at them again: intake serve --data-dir {data_dir}")
        return status
    finally:
        process.terminate()
        process.wait(timeout=30)


DEMO_REPLY = "Hello, we are sorry the vase arrived broken: a replacement leaves today, its tracking number follows."


def _demo_answers(url: str, tickets: list[dict[str, Any]]) -> int:
    """An agent answers the oldest form ticket (a reply, emailed to the outbox: the ticket's first response) and
    resolves the oldest SMS one, as a team would have by now. The reply is waited for until it is sent."""
    oldest = {
        channel: min((t for t in tickets if t["channel"] == channel), key=lambda t: t["created_at"], default=None)
        for channel in ("form", "sms")
    }
    done = 0
    if (form := oldest["form"]) is not None:
        reply = {"text": DEMO_REPLY, "by": "demo-agent"}
        answer = _post(url, f"/tickets/{form['id']}/replies", reply, {"idempotency-key": f"demo-{form['id']}"})
        state, deadline = answer["state"], time.monotonic() + 30
        while state == "queued" and time.monotonic() < deadline:
            time.sleep(0.1)
            thread = _get(url, f"/tickets/{form['id']}")["messages"]
            state = next(m["state"] for m in thread if m["receipt_id"] == answer["reply_id"])
        done += 1
    if (sms := oldest["sms"]) is not None:
        note = "Called back: the delivery slot is confirmed."
        _post(url, f"/tickets/{sms['id']}/events", {"type": "resolved", "by": "demo-agent", "note": note})
        done += 1
    return done


def _demo_failures(url: str, log: Path) -> int:
    """What went wrong while the demo ran, said here rather than only in the server's log: dead letters and
    logged errors. How many there were."""
    failures = _get(url, "/failures")["items"]
    errors = [line for line in log.read_text(encoding="utf-8").splitlines() if '"level":"ERROR"' in line]
    if failures:
        print(f"\nintake demo: {_count(len(failures), 'message')} failed (intake failures list --url {url})")
    if errors:
        print(f"intake demo: {_count(len(errors), 'error')} logged, in {log}:", file=sys.stderr)
        for line in errors[:5]:
            print(f"  {line[:300]}", file=sys.stderr)
    return len(failures) + len(errors)


def _demo_digests(url: str, policy: Policy, outbox: Path) -> bool:
    """Publish each team's daily digest of its local today (`intake serve` publishes it before it answers 202);
    print where its HTML is (extracted from the `.eml` in the outbox, written next to it). False when a team's
    digest was not mailed."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    print()
    ok = True
    for team_id, team in policy.teams.items():
        today = datetime.now(ZoneInfo(team.timezone)).date().isoformat()
        answer = _post(url, f"/digests/{team_id}/daily", {"date": today})
        found = _digest_html(outbox, f"{team_id}; period=daily; start={answer['start']}")
        if found is None:
            print(f"digest of {team_id} for {today}: not mailed (an empty day, or nobody to mail it to)")
            ok = False
            continue
        figures = _get(url, answer["preview"])["figures"]
        eml, html = found
        new, still_open = figures["current"]["new_tickets"], figures["backlog"]["open"]
        print(f"digest of {team_id} for {today}: {new} new, {still_open} open; mailed as {eml}")
        print(f"  its HTML: {html}")
    return ok


def _digest_html(outbox: Path, digest: str) -> tuple[Path, Path] | None:
    """The outbox's latest `.eml` of the digest its `X-Intake-Digest` header names (`<team>; period=<period>;
    start=<date>`) and its HTML part, written next to it as `<same name>.html`."""
    from email.message import EmailMessage
    from email.parser import BytesParser

    from intake.mail_policy import DEFAULT

    for eml in sorted(outbox.glob("*.eml"), reverse=True):  # named by the time they were written: newest first
        message = BytesParser(policy=DEFAULT).parsebytes(eml.read_bytes())
        assert isinstance(message, EmailMessage)
        if str(message.get("X-Intake-Digest", "")) != digest:
            continue
        part = message.get_body(preferencelist=("html",))
        if part is None:
            return None
        html = eml.with_suffix(".html")
        html.write_text(part.get_content(), encoding="utf-8")
        return eml, html
    return None


def _start_server(config: Path, data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable,
        "-m",
        "intake.cli",
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--config",
        str(config),
    ]
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "serve.log"  # its logs and metrics (stderr) and its later lines: kept, never in the way
    with log.open("a", encoding="utf-8") as sink:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=sink, text=True)  # noqa: S603
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("intake serving "):
        process.kill()
        raise RuntimeError(f"intake serve did not start: {line.strip()!r} (its log: {log})")
    url = line.split()[2]
    threading.Thread(target=_copy_lines, args=(process.stdout, log), name="serve-log", daemon=True).start()
    deadline = time.monotonic() + 30
    while True:
        try:
            _get(url, "/healthz")
            return process, url
        except urllib.error.HTTPError:  # 503 until every worker is up
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)


def _copy_lines(source: IO[str], path: Path) -> None:
    with path.open("a", encoding="utf-8") as sink:
        for line in source:
            sink.write(line)
            sink.flush()


def _wait_for_tickets(url: str, expected: int, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        tickets = _all_tickets(url)
        if len(tickets) >= expected or time.monotonic() > deadline:
            return tickets
        time.sleep(0.2)


def _all_tickets(url: str, **filters: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**filters, "limit": "100", **({"cursor": cursor} if cursor else {})}
        page = _get(url, "/tickets?" + urlencode(query))
        items += page["items"]
        cursor = page["next"]
        if cursor is None:
            return items


def _tickets_list(args: argparse.Namespace) -> int:
    filters = {k: v for k in ("team", "status", "channel") if (v := getattr(args, k))}
    tickets = _all_tickets(args.url, **filters)
    print(json.dumps(tickets, indent=2) if args.json else _table(tickets))
    return 0


def _tickets_show(args: argparse.Namespace) -> int:
    try:
        ticket = _get(args.url, f"/tickets/{args.id}")
    except urllib.error.HTTPError as error:
        problem = json.loads(error.read() or b"{}")
        print(f"intake: {problem.get('detail', error)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(ticket, indent=2))
        return 0
    contact = ticket.get("contact") or {}
    print(f"#{ticket['reference']}  {ticket['subject'] or '(no subject)'}")
    print(f"  {ticket['status']} · {ticket['priority']} · {ticket['channel']} · team {ticket['team']}")
    identities = ", ".join(contact.get("emails", []) + contact.get("phones", []))
    print(f"  from {contact.get('name') or '?'} {identities}")
    if ticket.get("reply_window_closes_at"):
        print(
            f"  Free replies until {ticket['reply_window_closes_at']} (then WhatsApp templates, Meta's HUMAN_AGENT tag)"
        )
    for message in ticket["messages"]:
        reaction = f"  {message['reaction']}" if message.get("reaction") else ""
        state = _delivery(message)
        print(f"\n  [{message['received_at']}] {message['direction']} via {message['provider']}{reaction}{state}")
        for line in message["text"].splitlines() or [""]:
            print(f"    {line}")
        for attachment in message.get("attachments", []):
            where = attachment.get("s3_key") or attachment.get("url") or attachment.get("media_status") or "?"
            size = f"{attachment['size']} bytes, " if attachment.get("size") is not None else ""
            print(f"    📎 {attachment['filename']} ({size}{where})")
    for timer in ticket.get("sla", []):
        when = "breached " + timer["breached_at"] if timer.get("breached_at") else "due " + timer["due_at"]
        print(f"  SLA {timer['target']}: {timer['state']} ({when}, generation {timer['generation']})")
    print("\n  history:")
    for event in ticket["events"]:
        if event["kind"] not in _QUIET_EVENTS:
            print(f"    {_minute(event['at'])}  {_event_line(event['kind'], event.get('detail') or {})}")
    return 0


def _delivery(message: dict[str, Any]) -> str:
    """An outbound message's state: `  → +33612345678 · delivered 2026-12-05 10:01`, and why it failed."""
    if message.get("state") is None:
        return ""
    to = (message.get("metadata") or {}).get("to")
    line = f"  → {to} · {message['state']} {_minute(message.get('state_at'))}" if to else f"  · {message['state']}"
    by = f" (by {message['by']})" if message.get("by") else ""
    error = f"\n    ! {message['error']}" if message.get("error") else ""
    return line.rstrip() + by + error


_QUIET_EVENTS = {"timer_started", "timer_paused", "timer_resumed", "timer_stopped"}  # `intake sla explain` has them


def _event_line(kind: str, detail: dict[str, Any]) -> str:
    """`resolved by ana: "Refund sent"`, `assigned to ana by lead`, `priority_changed from normal to high`."""
    words = [kind]
    if detail.get("assignee"):
        words.append(f"to {detail['assignee']}")
    if detail.get("priority"):
        words.append(f"from {detail.get('from', '?')} to {detail['priority']}")
    if detail.get("target"):
        words.append(str(detail["target"]))
    if detail.get("by"):
        words.append(f"by {detail['by']}")
    line = " ".join(words)
    return f"{line}: {json.dumps(detail['note'], ensure_ascii=False)}" if detail.get("note") else line


_ACTIONS = {"respond": "responded", "pend": "pending", "resolve": "resolved", "reopen": "reopened"}


def _tickets_act(args: argparse.Namespace) -> int:
    """Record an agent's action on a ticket (its SLA clocks follow)."""
    action = {"type": _ACTIONS[args.action], "by": args.by, **({"note": args.note} if args.note else {})}
    ticket = _post(args.url, f"/tickets/{args.id}/events", action)
    due = [f"{t['target']} {t['state']}" for t in ticket.get("sla", [])]
    print(f"#{ticket['reference']} is {ticket['status']}" + (f"; SLA: {', '.join(due)}" if due else ""))
    return 0


def _sla_explain(args: argparse.Namespace) -> int:
    print(_get(args.url, f"/tickets/{args.id}/sla")["explanation"], end="")
    return 0


def _inject_email(args: argparse.Namespace) -> int:
    """Hand a .eml file to a running `intake serve`, as SES receiving would."""
    raw = Path(args.file).read_bytes()
    query = "?" + urlencode({"to": ",".join(args.to)}) if args.to else ""
    request = urllib.request.Request(  # noqa: S310 - the user's own server
        args.url.rstrip("/") + "/_local/email" + query,
        data=raw,
        headers=_agent_headers({"content-type": "message/rfc822"}),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the user's own server
        answer = json.loads(response.read())
    print(f"queued {args.file} as receipt {answer['receipt']} ({answer['archived']})")
    return 0


def _quarantine_list(args: argparse.Namespace) -> int:
    held = _get(args.url, "/quarantine?" + urlencode({"status": args.status}))["items"]
    if args.json:
        print(json.dumps(held, indent=2))
        return 0
    for item in held:
        arrived = item["arrived"]
        print(f"{item['id']}  {arrived['received_at']}  {','.join(item['reasons']):<20} {item.get('subject') or ''}")
    print(f"{len(held)} {args.status}")
    return 0


def _quarantine_release(args: argparse.Namespace) -> int:
    released = _post(args.url, f"/quarantine/{args.id}/release", {"team": args.team} if args.team else {})
    print(f"released {args.id}: ticket {released.get('ticket_id') or '(none: auto mail)'}")
    return 0


def _digest_preview(args: argparse.Namespace) -> int:
    """A team's digest from a running Intake, sent nowhere: the HTML to a file, the text to stdout."""
    query = "?" + urlencode({"date": args.date}) if args.date else ""
    digest = _get(args.url, f"/digests/{args.team}/{args.period}{query}")
    figures = digest["figures"]
    name = f"digest-{args.team}-{args.period}-{figures['start']}.html"
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="intake-digest-")) / name
    out.write_text(digest["html"], encoding="utf-8")
    print(digest["subject"])
    print()
    print(digest["text"], end="")
    print(f"\nHTML written to {out}", file=sys.stderr)
    return 0


def _failures_list(args: argparse.Namespace) -> int:
    """Every queue's dead-lettered messages with their errors, from a running Intake."""
    listed = _get(args.url, "/failures")
    if args.json:
        print(json.dumps(listed, indent=2))
        return 0
    rows = [("ID", "QUEUE", "CHANNEL", "RECEIPT/TICKET", "TRIES", "FIRST TRY", "LAST TRY", "ERROR")]
    for f in listed["items"]:
        error = f"{f['error_type']}: {f['error_message']}" if f["error_type"] else "(none recorded: a timeout?)"
        rows.append(
            (
                f["id"],
                f["queue"],
                f["channel"] or "",
                f["receipt_id"] or f["ticket_id"] or "",
                str(f["attempts"]),
                _minute(f["first_try"]),
                _minute(f["last_try"]),
                error,
            )
        )
    if listed["items"]:
        print(_columns(rows))
    total = sum(listed["dead_letters"].values())
    hidden = (
        f" ({total} in the dead-letter queues: the others show once these are replayed)"
        if total > len(rows) - 1
        else ""
    )
    print(f"{len(rows) - 1} dead-lettered{hidden}")
    return 0


def _failures_replay(args: argparse.Namespace) -> int:
    """Send dead-lettered messages back to their queues (one, or all of them until none is left)."""
    if bool(args.id) == args.all:
        print("intake failures replay: give one ID, or --all", file=sys.stderr)
        return 2
    replayed: list[str] = []
    pending = [args.id] if args.id else [f["id"] for f in _get(args.url, "/failures")["items"]]
    while pending:
        for failure_id in pending:
            try:
                answer = _post(args.url, f"/failures/{quote(failure_id, safe='')}/replay", {})
            except urllib.error.HTTPError as error:
                if not args.all or error.code != 404:
                    raise
                continue  # replayed meanwhile (another operator)
            print(f"replayed {failure_id} onto {answer['queue']}")
            replayed.append(failure_id)
        # a FIFO dead-letter queue shows 10 of a conversation at a time: list again until nothing new is there
        pending = [f["id"] for f in _get(args.url, "/failures")["items"] if f["id"] not in replayed] if args.all else []
    print(f"{len(replayed)} replayed")
    return 0


def _digest_backfill(args: argparse.Namespace) -> int:
    """Count each team's queued tickets into its backlog counters (once, after upgrading from a version without
    them): in a data folder (`--data-dir`), or in AWS with INTAKE_TABLE_NAME set (the operator's credentials)."""
    if args.data_dir:
        os.environ["INTAKE_DATA_DIR"] = str(Path(args.data_dir).resolve())
    elif not os.environ.get("INTAKE_DATA_DIR") and not os.environ.get("INTAKE_TABLE_NAME"):
        print("intake digest backfill: give --data-dir, or INTAKE_TABLE_NAME for the AWS stack", file=sys.stderr)
        return 2
    os.environ["INTAKE_CONFIG"] = str(_config_path(args.config).resolve())
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")  # its report is what it prints
    from intake import runtime

    runtime.reset()
    store = runtime.store()
    for team in runtime.policy().teams:
        counted = store.count_backlog(team)
        print(f"{team}: {counted} queued tickets counted in; its digests read the counters")
    return 0


def _failures_reconcile(args: argparse.Namespace) -> int:
    """Queue again what was archived since then and never became a message: in a data folder (`--data-dir`), or in
    AWS with INTAKE_BUCKET_NAME, INTAKE_TABLE_NAME and INTAKE_INBOUND_QUEUE_URL set (the operator's credentials)."""
    from datetime import UTC, datetime, timedelta

    from intake.config import parse_duration

    now = datetime.now(UTC)
    try:
        since = datetime.fromisoformat(args.since)
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
    except ValueError:
        try:
            duration = parse_duration(args.since)
            assert isinstance(duration, timedelta)  # what it makes of any text it accepts
            since = now - duration
        except ValueError as error:
            print(f"intake failures reconcile: --since {args.since}: a date (2026-12-01), or {error}", file=sys.stderr)
            return 2
    from intake.reconciliation import MAX_WINDOW, WindowTooLongError, reconcile

    if not now - since <= MAX_WINDOW:
        print(f"intake failures reconcile: {WindowTooLongError(since)}", file=sys.stderr)
        return 2
    if args.data_dir:
        os.environ["INTAKE_DATA_DIR"] = str(Path(args.data_dir).resolve())
    elif not os.environ.get("INTAKE_DATA_DIR") and not os.environ.get("INTAKE_INBOUND_QUEUE_URL"):
        print(
            "intake failures reconcile: give --data-dir, or INTAKE_BUCKET_NAME, INTAKE_TABLE_NAME and "
            "INTAKE_INBOUND_QUEUE_URL for the AWS stack",
            file=sys.stderr,
        )
        return 2
    os.environ["INTAKE_CONFIG"] = str(_config_path(args.config).resolve())
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")  # its report is what it prints
    from intake import runtime

    runtime.reset()
    done = reconcile(runtime.inbox(), runtime.store(), runtime.policy(), since=since, now=now)
    print(f"{done.found} requests archived since {since:%Y-%m-%d %H:%M:%S} UTC; {done.requeued} queued again")
    for key in done.unreadable:
        print(f"  cannot be read again (left in the archive): {key}")
    return 0


def _schemas_export(args: argparse.Namespace) -> int:
    from intake.schemas import export

    for path in export(Path(args.out)):
        print(f"wrote {path}")
    return 0


def _config_check(args: argparse.Namespace) -> int:
    path = _config_path(args.config)
    policy = load_policy(path)
    print(f"{path}: valid ({_count(len(policy.teams), 'team')}, {_count(len(policy.section('forms') or {}), 'form')})")
    return 0


def _tickets_reply(args: argparse.Namespace) -> int:
    """Answer the customer where they wrote (queued, then sent by the sender); the state shows in `tickets show`."""
    import base64
    import mimetypes
    import uuid

    attachments = []
    for name in args.attach:
        path = Path(name)
        try:
            content = path.read_bytes()
        except OSError as error:
            print(f"intake: {name}: {error.strerror}", file=sys.stderr)
            return 1
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        encoded = base64.b64encode(content).decode()
        attachments.append({"filename": path.name, "content_type": media_type, "content_base64": encoded})
    body: dict[str, Any] = {"text": args.text or "", "by": args.by, "attachments": attachments}
    if args.template:
        body["template"] = args.template
    key = args.idempotency_key or uuid.uuid4().hex  # a retried command passes its own to send once
    try:
        answer = _post(args.url, f"/tickets/{args.id}/replies", body, {"idempotency-key": key})
    except urllib.error.HTTPError as error:
        problem = json.loads(error.read() or b"{}")
        templates = problem.get("templates")
        extra = f" (templates: {', '.join(templates) or 'none'})" if templates is not None else ""
        print(f"intake: {problem.get('detail', error)}{extra}", file=sys.stderr)
        return 1
    message = answer["message"]
    to = message["metadata"].get("to", "?")
    print(f"reply {answer['reply_id']} {answer['state']}: {message['channel']} to {to} via {message['provider']}")
    return 0


# ------------------------------------------------------------------ plumbing


def _agent_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """The agent token (`intake serve --agent-token`), from INTAKE_AGENT_TOKEN, when set."""
    token = os.environ.get("INTAKE_AGENT_TOKEN")
    return {**(headers or {}), **({"authorization": f"Bearer {token}"} if token else {})}


def _get(url: str, path: str) -> Any:
    request = urllib.request.Request(url.rstrip("/") + path, headers=_agent_headers())  # noqa: S310 - the user's URL
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the user's URL
        return json.loads(response.read())


def _post(url: str, path: str, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - the user's own server
        url.rstrip("/") + path,
        data=json.dumps(payload).encode(),
        headers=_agent_headers({"content-type": "application/json", **(headers or {})}),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the user's own server
        return json.loads(response.read())


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _minute(instant: str | None) -> str:
    return "" if instant is None else instant[:16].replace("T", " ")


def _table(tickets: list[dict[str, Any]]) -> str:
    rows = [("REF", "CREATED", "CHANNEL", "TEAM", "PRIORITY", "STATUS", "DUE", "MSGS", "FROM", "SUBJECT")]
    for t in tickets:
        due = _minute(t.get("next_due_at")) + (" breached" if t.get("breached") else "")
        rows.append(
            (
                t["reference"],
                _minute(t["created_at"]),
                t["channel"],
                t["team"],
                t["priority"],
                t["status"],
                due.strip() or "-",
                str(t["message_count"]),
                (t.get("customer") or "")[:24],
                (t.get("subject") or t.get("snippet") or "")[:48],
            )
        )
    return _columns(rows)


def _columns(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intake", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="command")

    serve = commands.add_parser("serve", help="run the whole pipeline on this machine (SQLite and files, no AWS)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    serve.add_argument("--data-dir", default=".intake", help="kept across restarts (default: .intake)")
    serve.add_argument("--config", help="policy file (default: $INTAKE_CONFIG or intake.yaml)")
    serve.add_argument("--smtp-port", type=int, help="also accept email over SMTP on this port, as SES would")
    serve.add_argument(
        "--http-processes",
        type=_at_least_one,
        help="processes answering HTTP on the port (default: 2); each answers one request at a time",
    )
    serve.add_argument(
        "--agent-token",
        help="agent routes (tickets, contacts, digests) need 'Authorization: Bearer <token>' "
        "(default: $INTAKE_AGENT_TOKEN); required to serve on a non-loopback --host",
    )
    serve.set_defaults(run=_serve)

    demo = commands.add_parser(
        "demo", help="start serve, post every sample in events/ (dated relative to now), answer two, print it all"
    )
    demo.add_argument("--events", default="events")
    demo.add_argument("--config")
    demo.add_argument("--data-dir", help="default: a new temporary folder")
    demo.add_argument("--serve", action="store_true", help="keep serving its data after the demo, until Ctrl-C")
    demo.set_defaults(run=_demo)

    tickets = commands.add_parser("tickets", help="read tickets over the HTTP API").add_subparsers(
        required=True, metavar="action"
    )
    listing = tickets.add_parser("list", help="newest first")
    show = tickets.add_parser("show", help="one ticket with its contact, messages and history")
    show.add_argument("id")
    for sub in (listing, show):
        sub.add_argument("--url", default=os.environ.get("INTAKE_URL", DEFAULT_URL))
        sub.add_argument("--json", action="store_true")
    for name in ("team", "status", "channel"):
        listing.add_argument(f"--{name}")
    listing.set_defaults(run=_tickets_list)
    show.set_defaults(run=_tickets_show)
    for verb, what in (("respond", "we answered"), ("pend", "waiting on the customer"), ("resolve", "done")):
        acting = tickets.add_parser(verb, help=f"{what}: record it; the SLA clocks follow")
        acting.add_argument("id")
        acting.add_argument("--by", default=os.environ.get("USER") or "agent", help="who (default: $USER)")
        acting.add_argument("--note")
        acting.add_argument("--url", default=os.environ.get("INTAKE_URL", DEFAULT_URL))
        acting.set_defaults(run=_tickets_act, action=verb)
    replying = tickets.add_parser("reply", help="answer the customer on the channel they used (sent after)")
    replying.add_argument("id")
    replying.add_argument("--text", help="the reply (required unless --attach)")
    replying.add_argument("--attach", action="append", default=[], metavar="FILE", help="a file to send (repeatable)")
    replying.add_argument("--template", help="WhatsApp: an approved template of intake.yaml (after the 24-hour window)")
    replying.add_argument("--by", default=os.environ.get("USER") or "agent", help="who (default: $USER)")
    replying.add_argument("--idempotency-key", help="the same key again sends nothing twice (default: a new one)")
    replying.add_argument("--url", default=os.environ.get("INTAKE_URL", DEFAULT_URL))
    replying.set_defaults(run=_tickets_reply)

    sla = commands.add_parser("sla", help="SLA deadlines").add_subparsers(required=True, metavar="action")
    explained = sla.add_parser("explain", help="the policy, calendar and arithmetic behind a ticket's deadlines")
    explained.add_argument("id")
    explained.add_argument("--url", default=os.environ.get("INTAKE_URL", DEFAULT_URL))
    explained.set_defaults(run=_sla_explain)

    inject = commands.add_parser("inject-email", help="hand a .eml file to a running intake serve, as SES would")
    inject.add_argument("file")
    inject.add_argument("--to", action="append", default=[], help="envelope recipient (repeatable)")
    inject.add_argument("--url", default=os.environ.get("INTAKE_URL", DEFAULT_URL))
    inject.set_defaults(run=_inject_email)

    quarantine = commands.add_parser(
        "quarantine", help="email held back as spam, virus or DMARC reject"
    ).add_subparsers(required=True, metavar="action")
    held = quarantine.add_parser("list", help="newest first")
    held.add_argument("--status", choices=["held", "released"], default="held")
    held.add_argument("--json", action="store_true")
    held.set_defaults(run=_quarantine_list)
    let_through = quarantine.add_parser("release", help="let one through: it becomes a ticket")
    let_through.add_argument("id")
    let_through.add_argument("--team", help="the team that takes it, if no team takes mail for its recipients")
    let_through.set_defaults(run=_quarantine_release)
    for sub in (held, let_through):
        sub.add_argument("--url", default=os.environ.get("INTAKE_URL", DEFAULT_URL))

    digest = commands.add_parser("digest", help="a team's digest").add_subparsers(required=True, metavar="action")
    preview = digest.add_parser("preview", help="render it (sent nowhere): the HTML to a file, the text to stdout")
    preview.add_argument("--team", required=True)
    preview.add_argument("--period", choices=["daily", "weekly"], default="daily")
    preview.add_argument("--date", help="a local date in the window (YYYY-MM-DD); default: the last complete one")
    preview.add_argument("--out", help="the HTML file (default: in a new temporary folder)")
    preview.add_argument("--url", default=os.environ.get("INTAKE_URL", DEFAULT_URL))
    preview.set_defaults(run=_digest_preview)
    backfill = digest.add_parser(
        "backfill",
        help="count the tickets queued before the backlog counters existed into them (once, after upgrading; "
        "until then digests count the whole queue)",
    )
    backfill.add_argument("--data-dir", help="a local Intake's data folder (default: $INTAKE_DATA_DIR; else AWS)")
    backfill.add_argument("--config", help="policy file (default: $INTAKE_CONFIG or intake.yaml)")
    backfill.set_defaults(run=_digest_backfill)

    failures = commands.add_parser(
        "failures", help="messages that failed until their queue dead-lettered them; requests never queued"
    ).add_subparsers(required=True, metavar="action")
    dead = failures.add_parser("list", help="each dead-lettered message, its error, tries, first and last")
    dead.add_argument("--json", action="store_true")
    dead.set_defaults(run=_failures_list)
    again = failures.add_parser("replay", help="send one (ID) or every (--all) dead-lettered message back to its queue")
    again.add_argument("id", nargs="?")
    again.add_argument("--all", action="store_true")
    again.set_defaults(run=_failures_replay)
    for sub in (dead, again):
        sub.add_argument("--url", default=os.environ.get("INTAKE_URL", DEFAULT_URL))
    reconciling = failures.add_parser(
        "reconcile", help="queue again what the archive holds since then and never became a message (at most 7 days)"
    )
    reconciling.add_argument(
        "--since", required=True, help="a UTC date or instant (2026-12-01), or a duration (6h, 2d)"
    )
    reconciling.add_argument("--data-dir", help="a local Intake's data folder (default: $INTAKE_DATA_DIR; else AWS)")
    reconciling.add_argument("--config", help="policy file (default: $INTAKE_CONFIG or intake.yaml)")
    reconciling.set_defaults(run=_failures_reconcile)

    schemas = commands.add_parser("schemas", help="JSON Schema and OpenAPI").add_subparsers(
        required=True, metavar="action"
    )
    export = schemas.add_parser("export", help="write schemas/ from the models")
    export.add_argument("--out", default="schemas")
    export.set_defaults(run=_schemas_export)

    config = commands.add_parser("config", help="the policy file").add_subparsers(required=True, metavar="action")
    check = config.add_parser("check", help="validate it and name each error's path")
    check.add_argument("config", nargs="?")
    check.set_defaults(run=_config_check)
    return parser


if __name__ == "__main__":
    sys.exit(main())
