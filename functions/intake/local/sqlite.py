"""What the local adapters share about SQLite: one write transaction that takes the write lock first."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE` … `COMMIT` (ROLLBACK on any error): what the transaction reads cannot change before it
    commits, whichever thread or process writes the file meanwhile. `db` is in autocommit mode
    (`isolation_level=None`)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
