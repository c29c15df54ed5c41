"""Construct and output ids from the names in `intake.resources` and the policy file."""

from __future__ import annotations

import re


def pascal_case(name: str) -> str:
    """`inbound-dlq` → `InboundDlq`, `contact_form` → `ContactForm`: ids that read like the diagram."""
    return "".join(part.capitalize() for part in re.split(r"[-_.\s]+", name) if part)
