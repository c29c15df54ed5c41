"""The web console in a real browser: Debian's Chromium driven by Playwright, against a real `intake serve`.

A support lead opens the queue, a form posted meanwhile appears in it without a reload (htmx), they open it, reply
to the customer (the email reaches the outbox), resolve it, and it leaves the queue. A screenshot of each page is
kept under pytest's base temporary folder (`<basetemp>/console-screenshots0/`, printed at the end). `make test`
installs Chromium (`make browser`); without it and without root to install it, the test is skipped, except in CI
where it fails."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from .client import Server, contact_body, form_headers

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
APPEARS_WITHIN_MS = 20_000  # the queue polls every 5 s; the worker makes the ticket in well under a second


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI") or os.geteuid() == 0:
            pytest.fail("Chromium is missing: `make browser` installs Debian's chromium (make test runs it)")
        pytest.skip("Chromium is missing and this user cannot install it: run `make browser` as root")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=chromium, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Any, str], None]]:
    folder = tmp_path_factory.mktemp("console-screenshots")

    def shoot(page: Any, name: str) -> None:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    yield shoot
    print(f"console screenshots: {folder}")


def test_a_lead_sees_a_new_ticket_arrive_answers_it_resolves_it_and_it_leaves_the_queue(
    browser: Any, launch: Callable[..., Server], tmp_path: Path, shots: Callable[[Any, str], None]
) -> None:
    from playwright.sync_api import expect

    server = launch(tmp_path / "data")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []  # CSP violations and script errors show up here
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "response",
        lambda response: problems.append(f"{response.status} {response.url}") if response.status >= 400 else None,
    )

    # Given the queue, open in the browser, with nothing in it
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name="Queue")).to_be_visible()
    expect(page.locator("#queue")).to_contain_text("No tickets here")
    page.evaluate("window.notReloaded = true")
    shots(page, "1-queue-empty")

    # When a customer posts a form (over HTTP, as a site's backend would)
    subject = f"Refund for order {uuid.uuid4().hex[:6]} <script>alert(1)</script>"
    body = contact_body(subject, name="Ana Silva", email="ana@example.com")
    answer = server.post("/webhooks/forms/contact", body, form_headers(body))
    assert answer.status == 202, answer.body

    # Then it appears in the queue by itself, with a live countdown, without the page being reloaded
    row = page.locator("#queue tbody tr", has_text=subject)
    expect(row).to_be_visible(timeout=APPEARS_WITHIN_MS)
    assert page.evaluate("window.notReloaded") is True
    expect(row.locator(".countdown")).to_have_text(_countdown())
    expect(row).to_contain_text("Ana Silva")
    shots(page, "2-queue-with-ticket")

    # When the lead opens it from the keyboard (the link is a real link, and keeps the focus across refreshes)
    row.get_by_role("link").focus()
    with page.expect_response(lambda response: "/console/queue" in response.url):
        pass  # the next refresh
    page.wait_for_timeout(300)  # swapped and settled
    assert page.evaluate("document.activeElement.textContent").endswith(subject)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text(subject)
    expect(page.locator(".timeline")).to_contain_text("About: " + subject)
    expect(page.get_by_role("heading", name="SLA clocks")).to_be_visible()
    shots(page, "3-ticket")

    # And replies to her (by email: the form gave her address), then resolves it
    page.get_by_label("Acting as").fill("Bea Lead")
    page.get_by_label("Reply to the customer").fill("Dear Ana, your refund is on its way.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status")).to_contain_text("reply queued")
    reply = page.locator(".timeline li.message.outbound")
    expect(reply).to_contain_text("Dear Ana, your refund is on its way.")
    expect(reply).to_contain_text("by Bea Lead")
    for _ in range(40):  # the sender worker sends it; the page shows its state as it stands
        if reply.locator(".state").inner_text() == "sent":
            break
        page.wait_for_timeout(250)
        page.reload()
    expect(reply.locator(".state")).to_have_text("sent")
    expect(page.locator(".timeline li.kind-responded")).to_contain_text("by Bea Lead")  # the first response, met
    shots(page, "4-ticket-replied")
    [mail] = [m for m in _outbox(server) if "Dear Ana" in m.get_body(("plain",)).get_content()]  # type: ignore[union-attr]
    assert mail["To"] == "ana@example.com" and f"[#{ticket_reference(page)}]" in str(mail["Subject"])
    page.get_by_label("Resolution note").fill("Refunded.")
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("status")).to_contain_text("resolved")
    expect(page.get_by_role("button", name="Reopen")).to_be_visible()
    shots(page, "5-ticket-resolved")

    # Then it has left the queue
    page.get_by_role("navigation").get_by_role("link", name="Queue").click()
    expect(page.locator("#queue")).to_contain_text("No tickets here")
    shots(page, "6-queue-after")
    # And on a phone's width the queue still reads
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url + "/?status=resolved")
    expect(page.locator("#queue tbody tr", has_text=subject)).to_be_visible()
    shots(page, "7-resolved-on-a-phone")
    context.close()
    assert problems == [], problems


def _countdown() -> Any:
    import re

    return re.compile(r"^(in \d|overdue \d|in under a minute)")


def _outbox(server: Server) -> list[EmailMessage]:
    folder = server.data_dir / "outbox"
    found = [message_from_bytes(p.read_bytes(), policy=email_policy.default) for p in sorted(folder.glob("*.eml"))]
    return [m for m in found if isinstance(m, EmailMessage)]


def ticket_reference(page: Any) -> str:
    """The ticket page's reference, as its heading shows it (`#ABCD1234 ...`)."""
    heading = page.get_by_role("heading", level=1).inner_text()
    return str(heading.split()[0].lstrip("#"))
