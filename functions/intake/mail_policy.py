"""`email.policy.default`, without its hidden cost: every email Intake parses or writes uses `DEFAULT`.

The standard library's `HeaderRegistry` builds a new class for every header it parses or sets (`__getitem__` calls
`type(...)`), a fifth of the time of parsing a typical email and of writing an acknowledgment. These classes hold
no state, so one per header name is kept (a bounded cache: a sender may invent any number of header names).
"""

from __future__ import annotations

from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from functools import lru_cache


class _Registry(HeaderRegistry):
    @lru_cache(maxsize=512)  # noqa: B019 - one registry for the process's lifetime
    def __getitem__(self, name: str) -> type[BaseHeader]:
        return super().__getitem__(name)


DEFAULT = policy.default.clone(header_factory=_Registry())
