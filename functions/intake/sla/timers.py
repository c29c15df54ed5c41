"""Starting and stopping SLA timers: one Step Functions execution per ticket x target x generation.

The definition is `state_machine.asl.json` next to this file, the one CDK deploys (with its own substitution of
`${TableName}` and `${NotificationsQueueUrl}`) and the tests create in moto through `definition()`; locally
`intake.local.timers` runs the same contract (and the ASL's own breach update) on its scheduler.
Execution names are `<ticket_id>-<target>-<generation>`: a retried worker starting the same timer again finds it
already there, which is success, so a timer can never run twice.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from intake.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

DEFINITION_PATH = Path(__file__).with_name("state_machine.asl.json")
SUBSTITUTIONS = ("TableName", "NotificationsQueueUrl")

_ALREADY_STARTED = "ExecutionAlreadyExists"
_NOT_THERE = "ExecutionDoesNotExist"
_CAUSE_LIMIT = 32768  # StopExecution's `cause` is at most 32 KiB


class TimersUnavailableError(Exception):
    """Step Functions did not take the request (throttled, unreachable, refused): try again later."""

    def __init__(self, operation: str, code: str) -> None:
        self.operation, self.code = operation, code
        super().__init__(f"{operation}: {code}")


class TimerControl(Protocol):
    """What the domain needs of timers; `Timers` in AWS and local mode, `NoTimers` where there is no machine."""

    def start(self, name: str, execution_input: dict[str, Any]) -> None: ...

    def stop(self, name: str, cause: str) -> None: ...


class Timers:
    """The SLA state machine's executions, by name."""

    def __init__(self, sfn: SFNClient, state_machine_arn: str) -> None:
        if ":stateMachine:" not in state_machine_arn:
            raise ValueError(f"not a state machine ARN: {state_machine_arn!r}")
        self._sfn = sfn
        self.state_machine_arn = state_machine_arn

    def execution_arn(self, name: str) -> str:
        """`arn:...:stateMachine:<machine>` → `arn:...:execution:<machine>:<name>`."""
        return self.state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name

    def start(self, name: str, execution_input: dict[str, Any]) -> None:
        """Start the timer `name`; if it was started before (a retry, a crash), that one stands."""
        try:
            self._sfn.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(execution_input)
            )
        except ClientError as error:
            if _code(error) == _ALREADY_STARTED:
                logger.info("sla timer already started", extra={"execution": name})
                return
            raise TimersUnavailableError("StartExecution", _code(error)) from error
        except BotoCoreError as error:
            raise TimersUnavailableError("StartExecution", type(error).__name__) from error
        logger.info("sla timer started", extra={"execution": name})

    def stop(self, name: str, cause: str) -> None:
        """Stop the timer `name`; one that has finished, was stopped or never started is fine."""
        try:
            self._sfn.stop_execution(executionArn=self.execution_arn(name), cause=cause[:_CAUSE_LIMIT])
        except ClientError as error:
            if _code(error) == _NOT_THERE:
                logger.info("sla timer not found", extra={"execution": name})
                return
            raise TimersUnavailableError("StopExecution", _code(error)) from error
        except BotoCoreError as error:
            raise TimersUnavailableError("StopExecution", type(error).__name__) from error
        logger.info("sla timer stopped", extra={"execution": name})


class NoTimers:
    """For processes without a state machine: starting and stopping do nothing."""

    def start(self, name: str, execution_input: dict[str, Any]) -> None:
        return None

    def stop(self, name: str, cause: str) -> None:
        return None


def definition(table_name: str, queue_url: str) -> str:
    """The ASL with its substitution variables filled in, as CDK's `definitionSubstitutions` fills them."""
    text = DEFINITION_PATH.read_text(encoding="utf-8")
    values = {"TableName": table_name, "NotificationsQueueUrl": queue_url}
    for name in SUBSTITUTIONS:
        # Values go inside JSON strings: encode them as JSON string content
        text = text.replace("${" + name + "}", json.dumps(values[name])[1:-1])
    left = re.findall(r"\$\{[A-Za-z0-9_]+\}", text)
    if left:
        raise ValueError(f"unsubstituted variables in {DEFINITION_PATH.name}: {', '.join(sorted(set(left)))}")
    return text


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))
