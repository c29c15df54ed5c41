"""The local adapters' write transactions (`intake.local.sqlite.immediate`): writers in any thread or process
queue on the database's writer lock, which an error or a killed holder gives back."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import threading
from pathlib import Path

import pytest

from intake.local.sqlite import immediate


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    return db


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "counter.db"
    with immediate(_connect(path), path) as db:
        db.execute("CREATE TABLE counter (n INTEGER)")
        db.execute("INSERT INTO counter VALUES (0)")
    return path


def _count(path: Path) -> int:
    return int(_connect(path).execute("SELECT n FROM counter").fetchone()[0])


def test_writers_in_many_threads_never_lose_an_update(database: Path) -> None:
    # Given 8 threads, each with its own connection, incrementing by reading then writing, 50 times each
    def increment() -> None:
        db = _connect(database)
        for _ in range(50):
            with immediate(db, database):
                (n,) = db.execute("SELECT n FROM counter").fetchone()
                db.execute("UPDATE counter SET n = ?", (n + 1,))

    threads = [threading.Thread(target=increment) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert _count(database) == 400


def test_a_failed_transaction_rolls_back_and_gives_the_lock_back(database: Path) -> None:
    db = _connect(database)
    with pytest.raises(RuntimeError), immediate(db, database):
        db.execute("UPDATE counter SET n = 99")
        raise RuntimeError("the transaction's code failed")

    # Then nothing was written, and another thread (another descriptor) writes at once
    other = threading.Thread(target=lambda: _write(database, 1))
    other.start()
    other.join(timeout=10)
    assert not other.is_alive()
    assert _count(database) == 1


def _write(path: Path, n: int) -> None:
    with immediate(_connect(path), path) as db:
        db.execute("UPDATE counter SET n = ?", (n,))


def _hold_the_lock(path: str, holding: multiprocessing.synchronize.Event) -> None:
    db = _connect(Path(path))
    with immediate(db, Path(path)):
        db.execute("UPDATE counter SET n = 7")
        holding.set()
        threading.Event().wait()  # until killed, inside the transaction


def test_a_writer_killed_inside_its_transaction_blocks_no_one(database: Path) -> None:
    # Given another process killed with SIGKILL while it holds the writer lock in an open transaction
    spawn = multiprocessing.get_context("spawn")
    holding = spawn.Event()
    holder = spawn.Process(target=_hold_the_lock, args=(str(database), holding))
    holder.start()
    assert holding.wait(30)
    assert holder.pid is not None
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)

    # Then this process writes (its uncommitted update is gone)
    writer = threading.Thread(target=lambda: _write(database, 3))
    writer.start()
    writer.join(timeout=10)
    assert not writer.is_alive()
    assert _count(database) == 3
