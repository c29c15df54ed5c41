"""The archive port: bytes kept under a key (raw requests, emails, attachments, digests).

`S3Archive` is the AWS adapter (the raw archive bucket); `intake.local.archive.FileArchive` keeps the same keys
as files under a folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class ArchiveKeyError(KeyError):
    """Nothing is archived under this key."""


class Archive(Protocol):
    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Keep `body` under `key` (replacing what was there); durable once this returns."""

    def get(self, key: str) -> bytes:
        """What `put` kept under `key`; ArchiveKeyError when nothing is."""

    def keys(self, prefix: str) -> list[str]:
        """Every key that starts with `prefix`, sorted."""


class S3Archive:
    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3, self.bucket = s3, bucket

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def get(self, key: str) -> bytes:
        try:
            body: bytes = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            raise ArchiveKeyError(key) from None
        return body

    def keys(self, prefix: str) -> list[str]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))
