"""Queue consumers, as Lambda's SQS event source mapping runs them: batches in, failures left behind.

Each consumer is one thread calling its function's handler with one batch at a time (one Lambda environment);
a message the handler reports failed, or a batch whose invocation raised, stays on the queue and comes back
after the visibility timeout, up to the queue's receive limit, then goes to its dead-letter queue.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from intake.local.gateway import LocalContext
from intake.observability import logger
from intake.queues import Queue, Received, sqs_record

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
REGION = "us-east-1"  # what the events say; nothing here talks to AWS
# One handler invocation at a time in a process, as in one Lambda environment: Powertools' logger keys and
# metrics are process-wide, so two invocations at once would log under each other's ids.
INVOCATION = threading.Lock()


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:000000000000:intake-local-{name}"


def sqs_event(messages: list[Received], arn: str) -> dict[str, Any]:
    return {"Records": [sqs_record(message, arn, REGION) for message in messages]}


def poll_once(queue: Queue, arn: str, name: str, handler: Handler, wait_s: float = 1) -> int:
    """One receive → handler → delete round; returns how many messages the handler took."""
    messages = queue.receive(max_messages=10, wait_s=wait_s)
    if not messages:
        return 0
    try:
        with INVOCATION:
            result = handler(sqs_event(messages, arn), LocalContext(name, uuid.uuid4().hex))
    except Exception:  # as in Lambda: a failed invocation deletes nothing; the queue redelivers
        logger.exception("batch failed; its messages stay on the queue", extra={"function": name})
        return 0
    failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
    done = [m.receipt for m in messages if m.message_id not in failed]
    queue.delete(done)
    return len(done)


class Consumer(threading.Thread):
    def __init__(self, name: str, queue: Queue, handler: Handler, stop: threading.Event) -> None:
        super().__init__(name=f"consumer-{name}", daemon=True)
        self._queue, self._handler, self._stopping = queue, handler, stop
        self._arn = queue_arn(name)
        self.function_name = name
        self.polling = threading.Event()  # set once the first receive ran: the consumer is up

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                poll_once(self._queue, self._arn, self.function_name, self._handler)
            except Exception:  # the queue itself failed (disk full, locked): wait, never die
                logger.exception("queue unavailable", extra={"function": self.function_name})
                self._stopping.wait(1)
            self.polling.set()
