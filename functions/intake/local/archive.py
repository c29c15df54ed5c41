"""The archive on the file system: each key a file under one folder, written and fsynced before `put` returns."""

from __future__ import annotations

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
        """Write to a temporary file, fsync, rename over the key, fsync the folder: whole or absent after a crash."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
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
