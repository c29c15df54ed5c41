"""The emulated deployment the moto tests run on (`tests.moto_stack`): what one test leaves running reaches no other."""

from __future__ import annotations

import json
import time

import boto3

from tests.moto_stack import ACCOUNT, REGION, create_resources, emulated


def test_an_execution_still_waiting_when_its_test_ends_sends_nothing_into_the_next_tests_queue() -> None:
    wait_then_send = {
        "StartAt": "Wait",
        "States": {
            "Wait": {"Type": "Wait", "Seconds": 2, "Next": "Send"},
            "Send": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage",
                "Parameters": {"QueueUrl.$": "$.queue", "MessageBody": "late"},
                "End": True,
            },
        },
    }
    # Given a test whose execution is still in its Wait when the test ends
    with emulated():
        queue = create_resources("isolated").queue_urls["notifications"]
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine = sfn.create_state_machine(
            name="wait-then-send",
            definition=json.dumps(wait_then_send),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/wait-then-send",
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"queue": queue}))["executionArn"]
        deadline = time.monotonic() + 5
        while not sfn.get_execution_history(executionArn=execution)["events"] and time.monotonic() < deadline:
            time.sleep(0.01)

    # When the next test makes the same queue and its Wait has passed
    with emulated():
        queue = create_resources("isolated").queue_urls["notifications"]
        time.sleep(2.5)

        # Then nothing arrived in it
        sqs = boto3.client("sqs", region_name=REGION)
        assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages") is None
