"""A Lambda cold start as the first invocation pays it: a fresh interpreter imports the handler AND handles one
representative event, against a fresh interpreter that imports boto3 and makes the same AWS calls itself.

Both sides run everything of botocore but the network: clients are made (service models read), requests built,
signed and sent to a `before-send` hook that answers with the response moto gave for that call when the handler
handled the same event in the recording process. The baseline replays the very calls (operation and parameters)
the handler made, so the ratio is what Intake adds to the AWS work it cannot avoid, not flattered by leaving
that work out. This module's top level imports nothing beyond the standard library: it is also the child script
(`python cold_start.py <payload> <result>`), and what it imports counts for both sides alike.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import pickle
import sys
import time
from pathlib import Path
from typing import Any

# One Lambda context, as Powertools reads it (the child cannot import intake.local for it: that would count)
_CONTEXT = {
    "function_name": "cold-start",
    "aws_request_id": "00000000-0000-4000-8000-000000000000",
    "memory_limit_in_mb": 256,
    "invoked_function_arn": "arn:aws:lambda:us-east-1:000000000000:function:cold-start",
}


class _Context:
    def __init__(self) -> None:
        self.__dict__.update(_CONTEXT)

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class _Raw(io.BytesIO):
    """A recorded response body as botocore reads one from urllib3 (moto's MockRawResponse does the same)."""

    def stream(self, **_: Any) -> Any:
        contents = self.read()
        while contents:
            yield contents
            contents = self.read()


def child(payload_path: str, result_path: str) -> None:
    """One cold start: the clock starts before anything of botocore, boto3 or Intake is imported."""
    with open(payload_path, "rb") as file:
        payload = pickle.load(file)
    answers: dict[str, list[tuple[int, dict[str, str], bytes]]] = copy.deepcopy(payload["responses"])
    made: list[str] = []

    def replay(request: Any, event_name: str, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        operation = ".".join(event_name.split(".")[1:3])  # before-send.<service>.<Operation>
        made.append(operation)
        if not answers.get(operation):
            raise RuntimeError(f"no recorded response for {operation} (call {len(made)})")
        status, headers, body = answers[operation].pop(0)
        return AWSResponse(request.url, status, headers, _Raw(body))

    started = time.perf_counter()
    import botocore.handlers

    botocore.handlers.BUILTIN_HANDLERS.append(("before-send", replay))
    if payload["handler"]:
        from importlib import import_module

        module = import_module(payload["handler"])
        answer = module.handler(payload["event"], _Context())
    else:
        import boto3

        session = boto3.session.Session()
        clients: dict[str, Any] = {}
        for service, operation, params in payload["calls"]:
            if service not in clients:
                clients[service] = session.client(service)
            # an error the handler met too (a condition that failed): same request, same answer
            with contextlib.suppress(clients[service].exceptions.ClientError):
                clients[service]._make_api_call(operation, params)
        answer = None
    elapsed = time.perf_counter() - started
    Path(result_path).write_text(json.dumps({"seconds": elapsed, "answer": answer, "calls": made}, default=str))


# ------------------------------------------------------------------- recording (the bench process, on moto)


class Recorder:
    """Every AWS call this process makes while it is on: the caller's parameters and moto's raw response."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.responses: dict[str, list[tuple[int, dict[str, str], bytes]]] = {}
        self.on = False

    def install(self) -> None:
        """On every botocore session made from now on (as moto installs its own `before-send`)."""
        import botocore.handlers

        botocore.handlers.BUILTIN_HANDLERS.append(("provide-client-params", self._params))
        botocore.handlers.BUILTIN_HANDLERS.append(("after-call", self._response))

    def _params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.on:
            self.calls.append((model.service_model.service_name, model.name, copy.deepcopy(params)))

    def _response(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if not self.on:
            return
        from botocore.response import StreamingBody

        if model.has_streaming_output:  # read it for the record, and give the caller a body it can still read
            name = model.output_shape.serialization.get("payload", "Body")
            body = parsed[name].read()
            parsed[name] = StreamingBody(io.BytesIO(body), len(body))
        else:
            body = http_response.content
        key = f"{model.service_model.service_id.hyphenize()}.{model.name}"
        headers = {k: v for k, v in http_response.headers.items()}
        self.responses.setdefault(key, []).append((http_response.status_code, headers, body))

    def payload(self, handler: str | None, event: dict[str, Any] | None) -> dict[str, Any]:
        return {"handler": handler, "event": event, "calls": self.calls, "responses": self.responses}


def write_payload(path: Path, payload: dict[str, Any]) -> None:
    with path.open("wb") as file:
        pickle.dump(payload, file)


if __name__ == "__main__":
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    child(sys.argv[1], sys.argv[2])
