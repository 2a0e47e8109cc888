"""A results folder that cannot be written — full, over quota or read-only — is the machine's fault,
not the run's: every later run would fail alike. So it is not recorded as a failed run (the record
could not be written anyway); it ends the sweep with one line that names the folder, the errno and
what to do (``StorageError``), the failed run's partial checkpoints removed, no temporary file left.
Finished runs keep their records: the same command resumes once the folder is writable.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Iterator

STORAGE_ERRNOS = {errno.ENOSPC: "free space there", errno.EDQUOT: "free space there (or raise the quota)",
                  errno.EROFS: "remount it read-write"}
# Below this much room a folder counts as full: a failed checkpoint write (torch reports it as a
# RuntimeError, not an OSError) is then the disk's doing. A record is ~30 KB, a checkpoint megabytes.
FULL_BELOW_BYTES = 1 << 20
# sysexits' EX_IOERR, the CLIs' exit code for it (2: bad input; 1: failed runs; 128+N: signal N)
EXIT_STORAGE = 74


class StorageError(Exception):
    """``folder`` cannot be written (``code``: an errno of ``STORAGE_ERRNOS``). Picklable: a sweep
    worker hands it to its supervisor as its result."""

    def __init__(self, folder: str, code: int) -> None:
        super().__init__(folder, code)
        self.folder, self.code = folder, code

    def __str__(self) -> str:
        return (f"cannot write to {self.folder}: {os.strerror(self.code)} (errno {self.code}, "
                f"{errno.errorcode[self.code]}); {STORAGE_ERRNOS[self.code]} or point results_dir at another "
                f"folder, then run the same command again (finished runs keep their records)")


def storage_fault(folder: Path, exception: BaseException) -> StorageError | None:
    """The storage fault behind ``exception``, if any: an OSError with a storage errno anywhere in
    its chain of causes, else the folder itself now full or read-only (statvfs)."""
    seen: BaseException | None = exception
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in STORAGE_ERRNOS:
            return StorageError(str(folder), seen.errno)
        seen = seen.__cause__ or seen.__context__
    return folder_fault(folder)


def folder_fault(folder: Path) -> StorageError | None:
    """``folder`` (or the nearest existing folder above it) read-only or full, from statvfs."""
    existing = Path(folder).absolute()
    while not existing.exists():
        existing = existing.parent
    stats = os.statvfs(existing)
    if stats.f_flag & os.ST_RDONLY:
        return StorageError(str(folder), errno.EROFS)
    if stats.f_bavail * stats.f_frsize < FULL_BELOW_BYTES:
        return StorageError(str(folder), errno.ENOSPC)
    return None


@contextlib.contextmanager
def storage_faults_raised(folder: Path) -> Iterator[None]:
    """An OSError in the block that is a storage fault of ``folder`` re-raised as its StorageError."""
    try:
        yield
    except OSError as error:
        fault = storage_fault(Path(folder), error)
        if fault is None:
            raise
        raise fault from error


def ensure_writable(folder: Path) -> None:
    """``folder`` created if need be; ``StorageError`` now, before any run starts, when it is read-only
    or full."""
    with storage_faults_raised(folder):
        Path(folder).mkdir(parents=True, exist_ok=True)
    fault = folder_fault(Path(folder))
    if fault is not None:
        raise fault
