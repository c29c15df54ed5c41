"""Where the functions run, in one place: the runtime, the architecture and the wheels that fit them."""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_

PYTHON_VERSION = "3.13"
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64

# `pip install --platform/--python-version/--implementation` values for wheels that run there.
PIP_PLATFORM = "manylinux2014_aarch64"
PIP_IMPLEMENTATION = "cp"

# PEP 508 marker environment of that runtime, to pick the dependencies the lock file gates by marker.
MARKER_ENVIRONMENT = {
    "implementation_name": "cpython",
    "os_name": "posix",
    "platform_machine": "aarch64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": f"{PYTHON_VERSION}.0",
    "python_version": PYTHON_VERSION,
    "sys_platform": "linux",
}

# The Python runtime ships boto3 and everything it needs; the layer leaves them to it.
PROVIDED_BY_RUNTIME = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"})

# The code asset is unpacked here; the policy file travels in it.
TASK_ROOT = "/var/task"
