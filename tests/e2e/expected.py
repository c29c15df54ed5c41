"""What each sample under events/forms must become over HTTP."""

from __future__ import annotations

from typing import Any

# What each sample must become (None: no ticket). Keys are the files under events/forms/.
EXPECTED: dict[str, dict[str, Any] | None] = {
    "contact-json.json": {
        "subject": "Order 1042 arrived damaged",
        "priority": "high",
        "name": "Camille Durand",
        "emails": ["camille.durand+orders@example.org"],
        "phones": ["+33612345678"],
        "text": "Bonjour, the vase in order 1042 arrived broken. Could you send a replacement?",
        "fields": {"order_number": "1042"},
        "attachments": [],
    },
    "feedback-typeform.json": {
        "subject": None,
        "priority": "normal",
        "name": "Sam Okafor",
        "emails": ["sam.okafor@example.com"],
        "phones": [],
        "text": "The app crashes every time I open the settings page on Android 15.",
        "fields": {"platform": "Android"},
        "attachments": [],
    },
    "website-honeypot.json": None,
    "website-multipart.json": {
        "subject": "Invoice shows the wrong address",
        "priority": "normal",
        "name": "Aiko Tanaka",
        "emails": [],
        "phones": ["+819012345678"],
        "text": "Please see the screenshot: the invoice has my old address.",
        "fields": {},
        "attachments": ["invoice.png"],
    },
    "website-urlencoded.json": {
        "subject": "Cannot log in",
        "priority": "normal",
        "name": "Jonas Weber",
        "emails": ["jonas.weber@example.net"],
        "phones": [],
        "text": "Since this morning the login page says my password is wrong, but I have not changed it.",
        "fields": {},
        "attachments": [],
    },
}
