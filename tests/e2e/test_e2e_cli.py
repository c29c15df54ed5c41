"""The `intake` command and the README's curl example, as a newcomer runs them."""

from __future__ import annotations

import json
import re
import sys
import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from intake.channels import registry
from intake.cli import DEMO_REPLY

from .client import REPO, Server, environment, post_contact_with_files, run
from .expected import EXPECTED

README = REPO / "README.md"
README_MARKER = "# readme-example: signed form post"
EXAMPLE_SCRIPT = Path(__file__).with_name("readme_example.sh")


def readme_example() -> tuple[str, str]:
    """(where it came from, the script): README.md's marked fenced block if it has one, else the .sh file."""
    if README.exists():
        for block in re.findall(r"^```[a-z]*\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.M | re.S):
            if block.lstrip().startswith(README_MARKER):
                return "README.md", block
    return EXAMPLE_SCRIPT.name, EXAMPLE_SCRIPT.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def ticket(server: Server) -> dict[str, Any]:
    """One ticket, with an attachment, made over HTTP for the commands to read."""
    return _new_ticket(server)


def _new_ticket(server: Server) -> dict[str, Any]:
    subject = f"printer on fire {uuid.uuid4().hex[:8]}"
    fields = {
        "name": "Lin Chen",
        "email": "lin@example.com",
        "subject": subject,
        "message": "It smokes.\nThen it stops.",
    }
    return post_contact_with_files(server, fields, [("log", "printer.txt", "text/plain", b"paper jam at tray 2")])


def _intake(*args: str, env: dict[str, str], timeout: float = 60) -> str:
    done = run([sys.executable, "-m", "intake.cli", *args], env, timeout)
    assert done.returncode == 0, f"intake {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_tickets_list_prints_the_ticket(server: Server, ticket: dict[str, Any], env: dict[str, str]) -> None:
    line = f"My order {uuid.uuid4().hex[:8]} never came."
    unnamed = post_contact_with_files(server, {"email": "kim@example.com", "message": f"\n  {line}\nThanks"}, [])

    out = _intake("tickets", "list", "--url", server.url, env=env)

    header, *rows = out.splitlines()
    columns = ["REF", "CREATED", "CHANNEL", "TEAM", "PRIORITY", "STATUS", "DUE", "MSGS", "FROM", "SUBJECT"]
    assert header.split() == columns
    [row] = [r for r in rows if r.startswith(ticket["reference"])]
    assert row.split()[3:7] == ["form", "support", "normal", "open"]
    assert row.split()[7:10] == [*ticket["next_due_at"][:16].split("T"), "1"]  # due: its first response's deadline
    assert re.search(rf"  Lin Chen +{ticket['subject']}$", row)
    # a ticket without a subject shows who wrote (their address, without a name) and its first line
    [row] = [r for r in rows if r.startswith(unnamed["reference"])]
    assert re.search(rf"  kim@example\.com +{line} …$", row)  # more lines follow


def test_a_list_cut_short_by_its_reader_ends_quietly(
    server: Server, ticket: dict[str, Any], env: dict[str, str]
) -> None:
    done = run(
        [
            "bash",
            "-o",
            "pipefail",
            "-c",
            f"{sys.executable} -m intake.cli tickets list --json --url {server.url} | head -c 1",
        ],
        env,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_the_reference_a_list_prints_names_the_ticket_everywhere(
    server: Server, ticket: dict[str, Any], env: dict[str, str]
) -> None:
    # Given the reference as a person reads it off a list (and types it in lower case)
    reference = ticket["reference"].lower()

    # Then show and explain take it
    assert _intake("tickets", "show", reference, "--url", server.url, env=env).startswith(f"#{ticket['reference']}")
    assert "first_response" in _intake("sla", "explain", reference, "--url", server.url, env=env)
    # and an action on another ticket too, its note kept in the history
    other = _new_ticket(server)
    note = f"Called back, {uuid.uuid4().hex[:6]} «sent»"
    args = ("tickets", "respond", other["reference"], "--by", "ana", "--note", note, "--url", server.url)
    assert _intake(*args, env=env).startswith(f"#{other['reference']} is open")
    history = _intake("tickets", "show", other["id"], "--url", server.url, env=env).split("  history:")[1]
    assert f'responded by ana: "{note}"' in history


def test_tickets_list_json_is_the_api_list(server: Server, ticket: dict[str, Any], env: dict[str, str]) -> None:
    before = server.tickets()
    listed = json.loads(_intake("tickets", "list", "--json", "--url", server.url, env=env))
    assert listed in (before, server.tickets())


def test_tickets_show_prints_contact_message_attachment_and_history(
    server: Server, ticket: dict[str, Any], env: dict[str, str]
) -> None:
    out = _intake("tickets", "show", ticket["id"], "--url", server.url, env=env)
    lines = out.splitlines()
    assert lines[0] == f"#{ticket['reference']}  {ticket['subject']}"
    assert "open · normal · form · team support" in lines[1]
    assert "from Lin Chen lin@example.com" in lines[2]
    assert "    It smokes." in lines and "    Then it stops." in lines
    assert any("printer.txt" in line and " bytes, attachments/" in line for line in lines)
    history = lines[lines.index("  history:") + 1 :]
    assert history[0].endswith("  created") and all(line.startswith("    20") for line in history)


def test_tickets_show_of_an_unknown_ticket_exits_1_with_the_reason(server: Server, env: dict[str, str]) -> None:
    done = run(
        [
            sys.executable,
            "-m",
            "intake.cli",
            "tickets",
            "show",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "--url",
            server.url,
        ],
        env,
    )
    assert done.returncode == 1
    assert "01ARZ3NDEKTSV4RRFFQ69G5FAV" in done.stderr


def test_readme_curl_example_posts_a_signed_form_and_reads_the_ticket_back(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    source, script = readme_example()
    path = tmp_path / "example.sh"
    path.write_text(script)
    done = run(["bash", "-euo", "pipefail", str(path)], {**env, "URL": server.url}, timeout=60)
    assert done.returncode == 0, f"the example from {source} failed:\n{done.stdout}\n{done.stderr}"
    printed = _json_documents(done.stdout)
    receipts = [d["receipt"] for d in printed if isinstance(d, dict) and "receipt" in d]
    assert len(receipts) == 1, f"the example from {source} printed no receipt:\n{done.stdout}"
    detail = server.wait_for_receipts(receipts)[receipts[0]]
    # and what it printed last, reading the tickets back, lists that ticket
    listings = [d for d in printed if isinstance(d, dict) and "items" in d]
    assert listings, f"the example from {source} did not print the ticket list:\n{done.stdout}"
    assert detail["id"] in [t["id"] for t in listings[-1]["items"]]


def _json_documents(text: str) -> list[Any]:
    """The JSON documents in what a script printed, whether or not a newline separates them."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        try:
            document, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            at = text.find("\n", at) + 1 or len(text)  # not JSON: skip the line
            continue
        found.append(document)
    return found


def test_readme_example_is_the_documented_one() -> None:
    source, script = readme_example()
    assert README_MARKER in script.splitlines(), source
    assert "openssl dgst -sha256 -hmac" in script and "curl" in script


def test_demo_posts_every_sample_and_prints_the_tickets(tmp_path: Path, bytecode_cache: Path) -> None:
    # Given a shell with no Intake settings at all (the demo brings its own secrets)
    env = environment(bytecode_cache, secrets=False)
    out = _intake("demo", "--data-dir", str(tmp_path / "demo"), env=env, timeout=120)
    subjects = {e["subject"] for e in EXPECTED.values() if e and e["subject"]}
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["REF", "CREATED", "CHANNEL"])
    rows = lines[header + 1 : lines.index("", header)]
    for subject in subjects:
        assert any(row.endswith(subject) for row in rows), f"{subject!r} not in the table:\n{out}"
    # every channel's samples that open a ticket (voicemail, missed call, texts, WhatsApp, Messenger, Instagram...)
    folders = {channel.samples for channel in registry.channels() if channel.samples}
    samples = [path for folder in sorted(folders) for path in REPO.glob(f"events/{folder}/*.json")]
    expected = sum(1 for path in samples if json.loads(path.read_text()).get("expect_ticket", True))
    assert len(rows) == expected
    assert {row.split()[3] for row in rows} == set(registry.kinds())  # every kind of conversation has a sample
    assert f"\n{expected} tickets (2 answered by the demo); data in " in out
    # dated relative to now (the samples' own WhatsApp dates are fixed, in November 2026): nothing older than a day
    created = [datetime.fromisoformat(" ".join(row.split()[1:3])).replace(tzinfo=UTC) for row in rows]
    assert all(datetime.now(UTC) - timedelta(days=1) < at <= datetime.now(UTC) for at in created)
    assert [row.split()[6] for row in rows if row.split()[3] == "sms"].count("resolved") == 1
    # the oldest form ticket is answered with a reply, sent by email (the outbox) before the table is printed
    mailed = [message_from_bytes(p.read_bytes(), policy=default) for p in (tmp_path / "demo" / "outbox").glob("*.eml")]
    texts = [m.get_body(preferencelist=("plain",)) for m in mailed]
    assert [t for t in texts if t is not None and DEMO_REPLY in t.get_content()], "no reply in the outbox"
    assert out.rstrip().splitlines()[-1] == f"to look at them again: intake serve --data-dir {tmp_path / 'demo'}"


def test_a_digest_preview_is_written_outside_the_working_tree(
    server: Server, ticket: dict[str, Any], env: dict[str, str]
) -> None:
    before = set(REPO.iterdir())
    done = run([sys.executable, "-m", "intake.cli", "digest", "preview", "--team", "support", "--url", server.url], env)
    assert done.returncode == 0, done.stderr
    written = Path(done.stderr.strip().rsplit("HTML written to ", 1)[1])
    # nothing new in the working tree but what tests running beside this one (pytest-xdist) may make there
    made = {path.name for path in set(REPO.iterdir()) - before} - {".hypothesis", ".pytest_cache"}
    assert written.is_file() and REPO not in written.parents and not made, made
    assert done.stdout.startswith("Customer Support · daily digest")


def test_config_check_counts_in_words(env: dict[str, str]) -> None:
    assert _intake("config", "check", env=env).rstrip().endswith("valid (1 team, 3 forms)")
