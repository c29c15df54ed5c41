"""The archive port on both adapters: S3 (moto) and files. Same keys in, same bytes out, same error when absent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from intake.archive import Archive, ArchiveKeyError, S3Archive
from intake.inbox import attachment_key, raw_key
from intake.local.archive import FileArchive
from tests.moto_stack import create_resources, emulated


@pytest.fixture(params=["s3", "files"])
def archive(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Archive]:
    if request.param == "files":
        yield FileArchive(tmp_path / "archive")
        return
    with emulated():
        resources = create_resources("archive-contract")
        yield S3Archive(boto3.session.Session(region_name="us-east-1").client("s3"), resources.bucket)


AT = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
KEYS = [
    raw_key("forms", "01M92VB10KAFPXCGZKB9EB3AFM", AT),
    raw_key("ses", "01M92VB10KAFPXCGZKB9EB3AFN", AT) + ".eml",
    attachment_key("01M92VB10KAFPXCGZKB9EB3AFM", AT, 0, "Facture n°12 (copie) é.pdf"),
    "digests/support/daily/2026-12-04.html",
]


@pytest.mark.parametrize("key", KEYS)
def test_what_is_put_under_a_key_is_read_back_byte_for_byte(archive: Archive, key: str) -> None:
    body = bytes(range(256)) * 40
    archive.put(key, body, "application/octet-stream")
    assert archive.get(key) == body


def test_a_second_put_replaces_the_first(archive: Archive) -> None:
    archive.put(KEYS[0], b"first", "text/plain")
    archive.put(KEYS[0], b"second", "text/plain")
    assert archive.get(KEYS[0]) == b"second"


def test_an_absent_key_is_archive_key_error(archive: Archive) -> None:
    with pytest.raises(ArchiveKeyError):
        archive.get("raw/2026/12/05/forms/never-written")


def test_the_file_archive_keeps_keys_inside_its_folder(tmp_path: Path) -> None:
    files = FileArchive(tmp_path / "archive")
    for key in ("../outside", "/etc/passwd", "raw/../../outside", ""):
        with pytest.raises(ValueError, match="not an archive key"):
            files.put(key, b"x", "text/plain")
    assert not (tmp_path / "outside").exists()


def test_keys_are_listed_by_prefix_sorted(archive: Archive) -> None:
    # Given requests archived on two days, an email beside one of them, and an attachment
    day = raw_key("forms", "01M92VB10KAFPXCGZKB9EB3AFM", AT).rsplit("/", 2)[0] + "/"
    for key in KEYS:
        archive.put(key, b"x", "application/octet-stream")
    later = raw_key("twilio", "01M92VB10KAFPXCGZKB9EB3AFP", datetime(2026, 12, 6, 9, 0, tzinfo=UTC))
    archive.put(later, b"x", "application/octet-stream")

    # Then a day's prefix lists that day's keys, a partial one what starts with it, and an unused one nothing
    assert archive.keys(day) == sorted(KEYS[:2])
    assert archive.keys("raw/2026/12/0") == sorted([*KEYS[:2], later])
    assert archive.keys("raw/2027/") == []


def test_a_write_in_progress_is_not_listed(tmp_path: Path) -> None:
    files = FileArchive(tmp_path / "archive")
    files.put(KEYS[0], b"whole", "text/plain")
    files.path(KEYS[0]).with_name(".half.123-456.tmp").write_bytes(b"ha")

    assert files.keys("raw/") == [KEYS[0]]


def test_puts_racing_on_one_new_key_leave_one_whole_body(tmp_path: Path) -> None:
    # Given 8 threads putting different bodies under the same key, which none of them has written before
    files = FileArchive(tmp_path / "archive")
    bodies = [bytes([n]) * 300_000 for n in range(8)]
    start = threading.Barrier(len(bodies))

    def put(body: bytes) -> None:
        start.wait()
        files.put(KEYS[0], body, "application/octet-stream")

    threads = [threading.Thread(target=put, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every put returned, and the key holds one of the bodies, whole, and no temporary file is left
    assert files.get(KEYS[0]) in bodies
    assert [p.name for p in files.path(KEYS[0]).parent.iterdir()] == [files.path(KEYS[0]).name]
