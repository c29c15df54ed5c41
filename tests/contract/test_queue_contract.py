"""The queue port's contract: every behaviour the functions count on, on SQS (moto) and on SQLite alike.

Where moto is not SQS, the test asserts SQS's documented behaviour for SQLite and says what moto does instead.
The last tests are SQLite's own: threads and processes sharing the file, `kill -9`, speed.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from intake.local.queue import SqliteQueue
from intake.queues import (
    QUEUE_MESSAGE_BYTES,
    DeadLetters,
    Outgoing,
    Queue,
    QueueRefusedError,
    Received,
    SqsQueue,
    sqs_record,
)
from intake.resources import QUEUES, QueueSpec
from tests.moto_stack import REGION, create_queues, emulated

SPECS = {spec.name: spec for spec in QUEUES}
VISIBILITY_S = 1
MAX_RECEIVES = SPECS["inbound"].max_receive_count  # 5, in the redrive policy on moto and in the spec for SQLite
FORK = multiprocessing.get_context("fork")


@dataclass
class Harness:
    backend: str  # "moto" or "sqlite"
    queue: Queue
    dead_letter_ids: Callable[[], list[str]]
    letters: DeadLetters  # the same queue, as operators see its dead letters


Opener = Callable[[str], Harness]


@pytest.fixture(params=["moto", "sqlite"])
def open_queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """`open_queue("inbound")`: that queue of `intake.resources`, visibility timeout 1 s, on either backend."""
    if request.param == "moto":
        with emulated():
            urls = create_queues("qcontract", visibility_timeout_s=VISIBILITY_S)
            sqs = boto3.session.Session(region_name=REGION).client("sqs")

            def on_sqs(name: str) -> Harness:
                dead_letter_url = urls[SPECS[name].dead_letter]
                dead = SqsQueue(sqs, dead_letter_url)
                queue = SqsQueue(sqs, urls[name], dead_letter_url)
                return Harness("moto", queue, lambda: [m.message_id for m in dead.receive(10)], queue)

            yield on_sqs
    else:

        def on_sqlite(name: str) -> Harness:
            queue = SqliteQueue(tmp_path / "queues.db", SPECS[name], visibility_timeout_s=VISIBILITY_S)
            return Harness("sqlite", queue, lambda: [d.message_id for d in queue.dead_letters()], queue)

        yield on_sqlite


def fifo(group: str, body: str) -> Outgoing:
    return Outgoing(body=body, group=group, dedupe=f"{group}-{body}")


def bodies(messages: list[Received]) -> list[str]:
    return [m.body for m in messages]


def drain(queue: Queue, wait_s: float = 0) -> list[Received]:
    """Receive and delete until a receive comes back empty."""
    taken: list[Received] = []
    while batch := queue.receive(10, wait_s=wait_s):
        queue.delete([m.receipt for m in batch])
        taken += batch
    return taken


def receive_again(queue: Queue, within_s: float = 4) -> list[Received]:
    """The next non-empty receive, waiting out a visibility timeout."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if batch := queue.receive(10, wait_s=1):
            return batch
    return []


# ------------------------------------------------------------------ both backends


def test_a_fifo_group_comes_in_send_order(open_queue: Opener) -> None:
    # Given one group's five messages, sent in two calls
    queue = open_queue("inbound").queue
    queue.send([fifo("a", str(n)) for n in range(3)])
    queue.send([fifo("a", str(n)) for n in range(3, 5)])

    # When they are received one at a time, each deleted before the next receive
    taken = []
    while batch := queue.receive(1):
        taken += batch
        queue.delete([m.receipt for m in batch])

    # Then they came in send order, each once, with their group and deduplication id
    assert bodies(taken) == ["0", "1", "2", "3", "4"]
    assert {m.group for m in taken} == {"a"}
    assert [m.dedupe for m in taken] == [f"a-{n}" for n in range(5)]
    assert all(m.receive_count == 1 and m.sent_at_ms > 0 for m in taken)


def test_a_group_in_flight_holds_back_its_later_messages_but_no_other_group(open_queue: Opener) -> None:
    # Given two messages of group a and one of group b
    queue = open_queue("inbound").queue
    queue.send([fifo("a", "a1"), fifo("a", "a2"), fifo("b", "b1")])

    # When a1 is received and not yet deleted
    first = queue.receive(1)
    assert bodies(first) == ["a1"]

    # Then b flows, a2 waits
    assert bodies(queue.receive(10)) == ["b1"]
    assert queue.receive(10) == []

    # And a2 comes once a1 is deleted
    queue.delete([first[0].receipt])
    assert bodies(queue.receive(10)) == ["a2"]


def test_an_undeleted_message_comes_back_after_the_visibility_timeout_counted_once_more(open_queue: Opener) -> None:
    # Given a message received and not deleted
    queue = open_queue("notifications").queue
    queue.send([Outgoing("ping")])
    first = queue.receive(10)
    assert [m.receive_count for m in first] == [1]

    # When the visibility timeout passes
    assert queue.receive(10) == []  # invisible meanwhile
    again = receive_again(queue)

    # Then it is delivered again, under a new receipt, its receive count one higher
    assert [(m.message_id, m.receive_count) for m in again] == [(first[0].message_id, 2)]
    assert again[0].receipt != first[0].receipt


def test_a_stale_receipt_deletes_nothing(open_queue: Opener) -> None:
    # Given a message delivered twice
    harness = open_queue("inbound")
    queue = harness.queue
    queue.send([fifo("a", "late")])
    first = queue.receive(10)
    second = receive_again(queue)
    assert [m.message_id for m in second] == [first[0].message_id]

    # When the first delivery's consumer deletes it with its (now stale) receipt
    queue.delete([first[0].receipt])

    # Then the message is still there for the second delivery's consumer (SQS: "you must provide the most
    # recently received receipt handle ... otherwise the request succeeds, but the message might not be
    # deleted"). moto deletes a message with any receipt it ever had.
    assert queue.depth() == (0 if harness.backend == "moto" else 1)
    queue.delete([second[0].receipt])
    assert queue.depth() == 0


def test_a_released_message_is_visible_at_once(open_queue: Opener) -> None:
    # Given a received message
    queue = open_queue("inbound").queue
    queue.send([fifo("a", "1"), fifo("a", "2")])
    first = queue.receive(1)

    # When it is released
    queue.release([first[0].receipt])

    # Then it is received again at once, before the next of its group
    again = queue.receive(1)
    assert [(m.body, m.receive_count) for m in again] == [("1", 2)]


def test_a_poison_message_is_dead_lettered_after_its_receive_limit_and_never_blocks_other_groups(
    open_queue: Opener,
) -> None:
    # Given a message its consumer always fails (released), and other groups' messages behind it
    harness = open_queue("inbound")
    queue = harness.queue
    queue.send([fifo("a", "poison"), fifo("b", "b1"), fifo("c", "c1"), fifo("b", "b2")])
    poison_id, others = None, []

    # When it has been received as often as the redrive policy allows
    for attempt in range(1, MAX_RECEIVES + 1):
        batch = queue.receive(10, wait_s=1)
        poison = [m for m in batch if m.body == "poison"]
        assert [m.receive_count for m in poison] == [attempt]
        poison_id = poison[0].message_id
        queue.release([m.receipt for m in poison])
        others += [m for m in batch if m.group != "a"]
        queue.delete([m.receipt for m in batch if m.group != "a"])

    # Then the other groups flowed meanwhile, and the next receive moves it to the dead-letter queue
    assert sorted(bodies(others)) == ["b1", "b2", "c1"]
    assert queue.receive(10) == []
    assert harness.dead_letter_ids() == [poison_id]
    assert queue.depth() == 0

    # And its group is free again
    queue.send([fifo("a", "next")])
    assert bodies(queue.receive(10)) == ["next"]


def test_a_standard_message_received_too_often_is_dead_lettered(open_queue: Opener) -> None:
    harness = open_queue("notifications")
    queue = harness.queue
    queue.send([Outgoing("poison")])
    for attempt in range(1, MAX_RECEIVES + 1):
        batch = queue.receive(10)
        assert [m.receive_count for m in batch] == [attempt]
        queue.release([m.receipt for m in batch])

    assert queue.receive(10) == []
    assert len(harness.dead_letter_ids()) == 1
    assert queue.depth() == 0


def dead_letter(queue: Queue, messages: list[Outgoing]) -> None:
    """Send these and fail them (release) until their queue dead-letters them."""
    queue.send(messages)
    for _ in range(MAX_RECEIVES):
        queue.release([m.receipt for m in queue.receive(10)])
    assert queue.receive(10) == []


def test_dead_letters_are_read_without_being_consumed(open_queue: Opener) -> None:
    # Given one conversation's two messages dead-lettered
    harness = open_queue("inbound")
    dead_letter(harness.queue, [fifo("a", "a1"), fifo("a", "a2")])

    # When operators read the dead letters, twice
    first, second = harness.letters.dead_letters(), harness.letters.dead_letters()

    # Then each read finds both, in order, with their group, and leaves them there
    assert [(d.body, d.group, d.reason) for d in first] == [
        ("a1", "a", "max_receive_count"),
        ("a2", "a", "max_receive_count"),
    ]
    assert [d.message_id for d in second] == [d.message_id for d in first]
    assert all(d.receive_count >= MAX_RECEIVES and d.sent_at_ms > 0 for d in first)
    assert harness.letters.dead_letter_count() == 2
    assert harness.queue.depth() == 0


def test_a_replayed_dead_letter_is_a_fresh_message_of_its_queue(open_queue: Opener) -> None:
    # Given two dead letters of one conversation
    harness = open_queue("inbound")
    dead_letter(harness.queue, [fifo("a", "a1"), fifo("a", "a2")])
    _, a2 = harness.letters.dead_letters()

    # When one is replayed by its id, then the rest
    assert harness.letters.redrive([a2.message_id]) == 1
    assert [d.body for d in harness.letters.dead_letters()] == ["a1"]
    assert harness.letters.redrive() == 1

    # Then both are back on the queue, in replay order, as first deliveries of their group
    back = drain(harness.queue)
    assert [(m.body, m.group, m.receive_count) for m in back] == [("a2", "a", 1), ("a1", "a", 1)]
    # And nothing is left to replay. SQLite keeps a replayed message's id; SQS gives the new message one of its own.
    assert harness.letters.dead_letters() == []
    assert harness.letters.redrive() == 0
    assert harness.letters.redrive(["unknown"]) == 0
    assert harness.letters.dead_letter_count() == 0


def test_a_standard_queues_dead_letter_is_replayed_too(open_queue: Opener) -> None:
    harness = open_queue("notifications")
    dead_letter(harness.queue, [Outgoing("ping")])
    [letter] = harness.letters.dead_letters()
    assert letter.group is None and letter.dedupe is None

    assert harness.letters.redrive([letter.message_id]) == 1

    assert [(m.body, m.receive_count) for m in drain(harness.queue)] == [("ping", 1)]


def test_a_duplicate_within_five_minutes_is_accepted_and_dropped(open_queue: Opener) -> None:
    # Given a message sent twice with one deduplication id (a provider's retried webhook)
    harness = open_queue("inbound")
    queue = harness.queue
    queue.send([Outgoing("first", group="a", dedupe="wamid.1")])
    queue.send([Outgoing("retried", group="a", dedupe="wamid.1"), Outgoing("other", group="a", dedupe="wamid.2")])

    # Then the second send was accepted and its duplicate dropped
    assert queue.depth() == 2
    assert bodies(drain(queue)) == ["first", "other"]

    # And a third send within the window is dropped too, though the first was already deleted. moto forgets a
    # deduplication id once its message is deleted and takes the message again.
    queue.send([Outgoing("third", group="a", dedupe="wamid.1")])
    assert queue.depth() == (1 if harness.backend == "moto" else 0)


def test_a_standard_queue_hands_out_any_visible_message_oldest_first(open_queue: Opener) -> None:
    queue = open_queue("notifications").queue
    queue.send([Outgoing("1"), Outgoing("2")])
    queue.send([Outgoing("3")])

    first = queue.receive(1)
    second = queue.receive(1)  # no group holds it back
    rest = queue.receive(10)

    assert bodies(first + second + rest) == ["1", "2", "3"]
    assert all(m.group is None for m in first + second + rest)


def test_depth_counts_visible_and_in_flight_messages(open_queue: Opener) -> None:
    queue = open_queue("notifications").queue
    queue.send([Outgoing(str(n)) for n in range(12)])  # more than one SQS batch
    assert queue.depth() == 12

    taken = queue.receive(3)
    assert queue.depth() == 12

    queue.delete([m.receipt for m in taken])
    assert queue.depth() == 12 - len(taken)


def test_a_long_poll_returns_as_soon_as_a_message_is_sent(open_queue: Opener) -> None:
    queue = open_queue("notifications").queue
    sender = threading.Timer(0.3, lambda: queue.send([Outgoing("late")]))
    sender.start()
    started = time.monotonic()

    batch = queue.receive(10, wait_s=5)

    assert bodies(batch) == ["late"]
    assert time.monotonic() - started < 2.5
    sender.join()


def test_a_fifo_message_without_group_or_deduplication_id_is_refused(open_queue: Opener) -> None:
    queue = open_queue("inbound").queue
    with pytest.raises(QueueRefusedError):
        queue.send([Outgoing("no group")])
    with pytest.raises(QueueRefusedError):
        queue.send([Outgoing("no dedupe", group="a")])
    assert queue.depth() == 0


def test_messages_adding_up_past_a_batchs_bytes_are_all_sent_in_order(open_queue: Opener) -> None:
    # Given ten messages of 100 KB in one send: more than one SendMessageBatch may carry (256 KiB in all)
    queue = open_queue("inbound").queue
    sent = [Outgoing(f"{n}" + "x" * 100_000, group="conversation-1", dedupe=f"d{n}") for n in range(10)]

    queue.send(sent)

    taken = []
    while batch := queue.receive(10):
        taken += batch
        queue.delete([m.receipt for m in batch])
    assert bodies(taken) == [m.body for m in sent]


def test_the_local_queue_refuses_a_message_over_sqs_s_size_as_sqs_does(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "queues.db", SPECS["inbound"])
    with pytest.raises(QueueRefusedError, match="over"):
        queue.send([Outgoing("x" * (QUEUE_MESSAGE_BYTES + 1), group="a", dedupe="1"), fifo("a", "small")])
    assert queue.depth() == 0


def test_a_received_message_makes_the_record_lambda_would_pass(open_queue: Opener) -> None:
    queue = open_queue("inbound").queue
    queue.send([fifo("conversation-1", '{"hello": 1}')])
    [message] = queue.receive(10)

    record = SQSRecord(sqs_record(message, "arn:aws:sqs:us-east-1:000000000000:q.fifo", REGION))

    assert record.message_id == message.message_id
    assert record.receipt_handle == message.receipt
    assert record.json_body == {"hello": 1}
    assert record.attributes.message_group_id == "conversation-1"
    assert record.attributes.message_deduplication_id == "conversation-1-" + '{"hello": 1}'
    assert record.attributes.approximate_receive_count == "1"
    assert int(record.attributes.sent_timestamp) == message.sent_at_ms


# ------------------------------------------------------------------ SQLite only


def sqlite_queue(path: Path, name: str = "inbound", visibility_s: int = VISIBILITY_S) -> SqliteQueue:
    return SqliteQueue(path / "queues.db", SPECS[name], visibility_timeout_s=visibility_s)


def test_redrive_puts_dead_letters_back_with_a_fresh_receive_count(tmp_path: Path) -> None:
    queue = sqlite_queue(tmp_path)
    queue.send([fifo("a", "poison"), fifo("b", "fine")])
    for _ in range(MAX_RECEIVES):
        batch = queue.receive(10)
        queue.release([m.receipt for m in batch if m.group == "a"])
        queue.delete([m.receipt for m in batch if m.group != "a"])
    assert queue.receive(10) == []
    [dead] = queue.dead_letters()
    assert (dead.body, dead.receive_count, dead.reason, dead.group) == (
        "poison",
        MAX_RECEIVES,
        "max_receive_count",
        "a",
    )

    assert queue.redrive() == 1

    assert queue.dead_letters() == []
    [back] = queue.receive(10)
    assert (back.message_id, back.receive_count, back.group) == (dead.message_id, 1, "a")
    assert queue.redrive(["unknown"]) == 0


def test_an_expired_receipt_deletes_nothing(tmp_path: Path) -> None:
    # SQS FIFO refuses a receipt whose visibility timeout has passed; SqliteQueue does so on every queue
    queue = sqlite_queue(tmp_path)
    queue.send([fifo("a", "slow")])
    [message] = queue.receive(10)
    time.sleep(VISIBILITY_S + 0.1)

    queue.delete([message.receipt])

    assert [m.receive_count for m in queue.receive(10)] == [2]


def test_messages_older_than_the_retention_period_are_dropped_at_receive(tmp_path: Path) -> None:
    spec = QueueSpec(name="short", fifo=True, visibility_timeout_s=1, max_receive_count=5, retention_s=1)
    queue = SqliteQueue(tmp_path / "queues.db", spec)
    queue.send([fifo("a", "old"), fifo("a", "old-too"), fifo("b", "old-b")])
    time.sleep(1.1)
    queue.send([fifo("a", "new")])

    assert bodies(queue.receive(10)) == ["new"]
    assert queue.expired == 3
    assert queue.depth() == 1


def test_queues_in_one_file_keep_their_messages_apart(tmp_path: Path) -> None:
    inbound, notifications = sqlite_queue(tmp_path, "inbound"), sqlite_queue(tmp_path, "notifications")
    inbound.send([fifo("a", "in")])
    notifications.send([Outgoing("out")])

    assert bodies(notifications.receive(10)) == ["out"]
    assert bodies(inbound.receive(10)) == ["in"]


def test_a_restarted_process_finds_what_was_sent_and_in_flight(tmp_path: Path) -> None:
    queue = sqlite_queue(tmp_path)
    queue.send([fifo("a", "1"), fifo("a", "2")])
    [first] = queue.receive(1)

    reopened = sqlite_queue(tmp_path)  # a new process's view of the same file

    assert reopened.depth() == 2
    assert reopened.receive(10) == []  # "1" still in flight holds its group
    again = receive_again(reopened)
    assert [(m.body, m.receive_count) for m in again] == [("1", 2), ("2", 1)]
    assert first.receipt not in {m.receipt for m in again}


Processed = tuple[str, int, int]  # group, index in group, monotonic ns when processed


def consume(path: Path, visibility_s: int, sink: Callable[[list[Processed]], None]) -> None:
    """A consumer: process (record) each message, then delete its batch; stop once the queue is empty."""
    queue = sqlite_queue(path, visibility_s=visibility_s)
    done: list[Processed] = []
    while True:
        batch = queue.receive(10, wait_s=0.2)
        if not batch:
            if queue.depth() == 0:
                break
            continue
        for message in batch:
            payload = json.loads(message.body)
            done.append((payload["g"], payload["i"], time.monotonic_ns()))
            time.sleep(0.002)  # the work: long enough that every consumer gets some
        queue.delete([m.receipt for m in batch])
    sink(done)


def consume_in_child(path: Path, visibility_s: int, results: Any) -> None:
    consume(path, visibility_s, results.put)


def test_threads_and_processes_sharing_the_file_process_every_message_once_in_group_order(tmp_path: Path) -> None:
    # Given 2,000 messages in 200 groups
    groups, per_group = 200, 10
    producer = sqlite_queue(tmp_path, visibility_s=60)
    outgoing = [
        Outgoing(json.dumps({"g": f"g{g}", "i": i}), group=f"g{g}", dedupe=f"g{g}-{i}")
        for i in range(per_group)
        for g in range(groups)
    ]
    for start in range(0, len(outgoing), 100):
        producer.send(outgoing[start : start + 100])

    # When 2 processes and 4 threads consume them at once
    results = FORK.Queue()
    processes = [FORK.Process(target=consume_in_child, args=(tmp_path, 60, results)) for _ in range(2)]
    for process in processes:  # forked before this process starts threads
        process.start()
    collected: list[list[Processed]] = []
    lock = threading.Lock()

    def keep(done: list[Processed]) -> None:
        with lock:
            collected.append(done)

    threads = [threading.Thread(target=consume, args=(tmp_path, 60, keep)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    collected += [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0

    # Then every message was processed exactly once, each group in send order, and the work was shared
    processed = [item for done in collected for item in done]
    assert sorted((g, i) for g, i, _ in processed) == sorted(
        (f"g{g}", i) for g in range(groups) for i in range(per_group)
    )
    by_group: dict[str, list[tuple[int, int]]] = {}
    for g, i, at in processed:
        by_group.setdefault(g, []).append((at, i))
    assert all([i for _, i in sorted(seen)] == list(range(per_group)) for seen in by_group.values())
    assert len(collected) == 6
    assert all(collected)
    assert producer.depth() == 0


def hold_messages(path: Path, holding: Any) -> None:
    """Receive a batch and never delete it (until killed)."""
    queue = sqlite_queue(path)
    batch = queue.receive(10)
    holding.send([m.message_id for m in batch])
    time.sleep(600)


def test_messages_in_flight_in_a_killed_consumer_come_back_after_the_visibility_timeout(tmp_path: Path) -> None:
    # Given a consumer process holding three groups' messages
    queue = sqlite_queue(tmp_path)
    queue.send([fifo(g, f"{g}{n}") for n in range(2) for g in "abc"])
    parent_end, child_end = FORK.Pipe()
    child = FORK.Process(target=hold_messages, args=(tmp_path, child_end))
    child.start()
    assert parent_end.poll(30)
    held = parent_end.recv()

    # When it is killed with SIGKILL
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)

    # Then they stay invisible until the timeout, then come back, counted twice, each group in order
    assert len(held) == 6
    assert queue.receive(10) == []
    again = receive_again(queue)
    assert sorted(m.message_id for m in again) == sorted(held)
    assert {m.receive_count for m in again} == {2}
    assert [m.body for m in again if m.group == "b"] == ["b0", "b1"]


def send_until_killed(path: Path, acknowledged: Connection) -> None:
    queue = sqlite_queue(path, name="notifications")
    for n in range(100_000):
        queue.send([Outgoing(str(n))])
        acknowledged.send(n)


def test_a_send_that_returned_survives_kill_9_of_the_sender(tmp_path: Path) -> None:
    # Given a process sending one message at a time, telling each that returned
    queue = sqlite_queue(tmp_path, name="notifications")
    parent_end, child_end = FORK.Pipe(duplex=False)
    child = FORK.Process(target=send_until_killed, args=(tmp_path, child_end))
    child.start()
    acknowledged: list[int] = []
    while len(acknowledged) < 50:
        assert parent_end.poll(30)
        acknowledged.append(parent_end.recv())

    # When it is killed mid-stream
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    while parent_end.poll(0.2):
        acknowledged.append(parent_end.recv())

    # Then every acknowledged message is on the queue, and nothing half-written
    stored = {int(m.body) for m in drain(queue)}
    assert set(acknowledged) <= stored
    assert stored == set(range(len(stored)))


def test_receive_stays_fast_with_100000_messages_in_10000_groups(tmp_path: Path) -> None:
    # Given 100,000 messages in 10,000 groups
    queue = sqlite_queue(tmp_path, visibility_s=300)
    started = time.perf_counter()
    queue.send([fifo(f"g{g}", str(i)) for i in range(10) for g in range(10_000)])
    sent_s = time.perf_counter() - started

    # When 1,000 groups are taken in flight, then messages are received and deleted
    for _ in range(1_000):
        queue.receive(1)
    timings = []
    for _ in range(200):
        started = time.perf_counter()
        batch = queue.receive(10)
        queue.delete([m.receipt for m in batch])
        timings.append((time.perf_counter() - started) * 1000)

    # Then a receive + delete of a batch stays a few milliseconds
    median = statistics.median(timings)
    print(f"\n100k messages / 10k groups: sent in {sent_s:.1f} s; receive(10)+delete median {median:.2f} ms")
    assert median < 50
    assert queue.depth() == 100_000 - 200 * 10


@pytest.mark.parametrize("batch_size", [1, 10])
@pytest.mark.parametrize("consumers", [1, 4])
def test_timing_of_send_receive_delete_per_message(tmp_path: Path, consumers: int, batch_size: int) -> None:
    messages, groups = 1_000, 100
    queue = sqlite_queue(tmp_path, visibility_s=60)
    started = time.perf_counter()
    for start in range(0, messages, 10):
        queue.send([fifo(f"g{(start + n) % groups}", str(start + n)) for n in range(10)])
    send_s = time.perf_counter() - started
    counts: list[int] = []

    def work() -> None:
        mine = sqlite_queue(tmp_path, visibility_s=60)
        taken = 0
        while batch := mine.receive(batch_size, wait_s=0.1):
            mine.delete([m.receipt for m in batch])
            taken += len(batch)
        counts.append(taken)

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(consumers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    consume_s = time.perf_counter() - started

    assert sum(counts) == messages
    print(
        f"\n{consumers} consumer(s), receive({batch_size}): "
        f"send {send_s * 1000 / messages:.2f} ms/message (batches of 10), "
        f"receive+delete {consume_s * 1000 / messages:.2f} ms/message, "
        f"total {(send_s + consume_s) * 1000 / messages:.2f} ms/message"
    )
