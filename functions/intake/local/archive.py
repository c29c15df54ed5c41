"""The archive on the file system: each key a file under one folder, written and fsynced before `put` returns."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path, PurePosixPath

from intake.archive import ArchiveKeyError


class FileArchive:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """The file a key is kept in; keys are relative POSIX paths without `..` (ours always are)."""
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or any(part in ("..", ".") for part in parts):
            raise ValueError(f"not an archive key: {key!r}")
        return self.root.joinpath(*parts)

    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Whole before `put` returns, and after a crash whole or absent where anything refers to it.

        A new key (nearly every put: each request, email and file has its own) is created in place and fsynced
        once: on a journaling file system (ext4, XFS, btrfs) the fsync of a new file commits its directory entry
        with it. A crash before it returns can leave it partial, but nothing refers to it: its request was not
        answered nor queued (its provider retries under another receipt), and `intake failures reconcile`
        lists it as unreadable. A key written again (a worker's retry storing the same attachment) is replaced
        through a temporary file, fsync, rename and an fsync of the folder: the old content or the new one."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            created = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            self._replace(target, body)
            return
        try:
            _write_all(created, body)
            os.fsync(created)
        except BaseException:
            _unlink_if_same(target, os.fstat(created))  # not a file that a concurrent put renamed over it
            raise
        finally:
            os.close(created)

    def _replace(self, target: Path, body: bytes) -> None:
        # one writer per process and thread at a time: its own temporary name, no collision
        temporary = target.with_name(f".{target.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        try:
            with temporary.open("wb") as file:
                file.write(body)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def sweep_temporary(self, before: float) -> int:
        """Remove the temporary files of writes that a crash interrupted (older than `before`, epoch seconds)."""
        removed = 0
        for stray in self.root.rglob(".*.tmp"):
            try:
                if stray.stat().st_mtime < before:
                    stray.unlink()
                    removed += 1
            except FileNotFoundError:  # a write in progress finished (renamed) between the listing and here
                continue
        return removed

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise ArchiveKeyError(key) from None

    def keys(self, prefix: str) -> list[str]:
        """The files under the prefix's folder whose keys start with it; writes in progress are not keys yet."""
        folder = self.root.joinpath(*PurePosixPath(prefix).parts[: -1 if not prefix.endswith("/") else None])
        found = (
            path.relative_to(self.root).as_posix()
            for path in folder.rglob("*")
            if path.is_file() and not (path.name.startswith(".") and path.name.endswith(".tmp"))
        )
        return sorted(key for key in found if key.startswith(prefix))


def _write_all(fd: int, body: bytes) -> None:
    view = memoryview(body)
    while view:
        view = view[os.write(fd, view) :]


def _unlink_if_same(path: Path, ours: os.stat_result) -> None:
    with contextlib.suppress(FileNotFoundError):
        if os.stat(path).st_ino == ours.st_ino:
            path.unlink()
