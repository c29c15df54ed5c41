"""JSON as providers post it, read so that what comes out can be queued and stored, and its members read leniently
(`text`, `member`, `members`); shared by the adapters."""

from __future__ import annotations

import json
import re
from typing import Any

from intake.errors import FieldInvalidError

_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def loads(data: bytes | str) -> Any:
    """`json.loads`, with every unpaired surrogate (`"\\ud83d"`: half an emoji, as a browser's script can cut one)
    read as U+FFFD: no UTF-8, which every queue and store writes, can hold it. Raises what `json.loads` raises."""
    document = json.loads(data)
    if isinstance(data, str):
        unpaired = _SURROGATE.search(data) or _ESCAPED_SURROGATE.search(data.encode("utf-8", "surrogatepass"))
    else:
        unpaired = _ESCAPED_SURROGATE.search(data)
    return _repaired(document) if unpaired else document


def document(body: bytes, shape: str = "a JSON object") -> dict[str, Any]:
    """A request body that must be a JSON object, read as `loads` reads it; `FieldInvalidError` on `(body)` saying
    what is wrong with it, for the receiver to answer 400."""
    try:
        data = loads(body)
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, too long an int
        raise FieldInvalidError("(body)", f"is not valid JSON: {error}") from None
    except RecursionError:
        raise FieldInvalidError("(body)", "is nested too deeply") from None
    if not isinstance(data, dict):
        raise FieldInvalidError("(body)", f"must be {shape}")
    return data


def text(raw: Any) -> str | None:
    """A member read as text: a string stripped (None when blank), or an integer's digits (providers post some ids
    and times as numbers); None for anything else."""
    if isinstance(raw, str):
        stripped = raw.strip()
        return stripped or None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    return None


def member(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """A member that should be an object: anything else is read as an empty one."""
    found = parent.get(key)
    return found if isinstance(found, dict) else {}


def members(parent: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """A member that should be a list of objects: what is not an object, or not in a list, is passed over."""
    found = parent.get(key)
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def _repaired(document: Any) -> Any:
    """The document with its strings (names included) freed of unpaired surrogates, walked without recursion."""
    root = [document]
    stack: list[Any] = [root]
    while stack:
        container = stack.pop()
        if isinstance(container, dict):
            for key in [k for k in container if _SURROGATE.search(k)]:
                container[_SURROGATE.sub("\ufffd", key)] = container.pop(key)
        for key, value in list(container.items() if isinstance(container, dict) else enumerate(container)):
            if isinstance(value, str):
                container[key] = _SURROGATE.sub("\ufffd", value)
            elif isinstance(value, dict | list):
                stack.append(value)
    return root[0]
