"""What the local adapters share about SQLite: one write transaction that takes the write lock first."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class _Descriptors(dict[str, int]):
    """One thread's descriptors of the writer lock files, closed with the thread."""

    def __init__(self) -> None:
        super().__init__()
        self.pid = os.getpid()

    def __del__(self) -> None:
        for fd in self.values():
            os.close(fd)


_threads = threading.local()


def _writer_lock(database: Path) -> int:
    """This thread's own descriptor of `<database>-writer`: an `flock` on it excludes every other descriptor, in
    this process as in the others."""
    held: _Descriptors | None = getattr(_threads, "descriptors", None)
    if held is None or held.pid != os.getpid():
        held = _threads.descriptors = _Descriptors()
    key = str(database)
    if key not in held:
        held[key] = os.open(f"{database}-writer", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    return held[key]


@contextmanager
def immediate(db: sqlite3.Connection, database: Path) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE` … `COMMIT` (ROLLBACK on any error): what the transaction reads cannot change before it
    commits, whichever thread or process writes the file meanwhile. `db` is in autocommit mode
    (`isolation_level=None`).

    Writers queue on an `flock` of the database's writer lock file first: the kernel wakes the next one the moment
    the lock is free, where SQLite's busy handler would sleep and poll (1, 2, 5, 10, 25 ms …), a tail that every
    request behind a worker's write paid. A process killed while holding it releases it with its descriptors."""
    lock = _writer_lock(database)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
