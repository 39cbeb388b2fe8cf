"""Advisory inter-process locks for work that must not run twice at once (one ensemble member, one
QE material).

A lock is an ``fcntl.flock`` on a small file.  The kernel releases it when the holding process ends
for any reason (SIGKILL, a crash, a power-cut reboot), so a lock left by a crashed run is never
stale: the next run simply takes it ("stale-lock recovery" needs no timeout and no PID guessing).
The file holds the holder's host, PID and start time, only to make the "busy" message useful.
It is removed when the lock is released; a run that finds the file gone or replaced after taking
its lock retries on the new file, so removal never lets two holders in.

``flock`` works between processes and between threads that open the file separately (each
:func:`exclusive` call opens it anew).  It is reliable on local filesystems; on NFS it depends on
the mount's lock support (``local_lock``), so on a cluster keep the run directories on a filesystem
with working locks.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from .jsonio import utc_now

__all__ = ["LockBusyError", "exclusive", "holder"]


class LockBusyError(RuntimeError):
    """Another live process holds the lock (the message names the lock file and the holder)."""

    def __init__(self, path: Path, what: str, info: dict | None):
        self.path, self.what, self.info = Path(path), what, info or {}
        who = (f"pid {self.info.get('pid')} on {self.info.get('host')} since {self.info.get('since')}"
               if self.info else "another process")
        super().__init__(f"{path}: {what} is in use by {who}; wait for it to finish or stop that process")


def holder(path: Path | str) -> dict | None:
    """What the lock file says about its holder (``None`` if there is no readable lock file)."""
    try:
        return json.loads(Path(path).read_text() or "null")
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def exclusive(path: Path | str, what: str = "this resource", *, wait: bool = False,
              poll_s: float = 0.2, timeout_s: float | None = None) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` for the ``with`` block.

    ``wait=False``: raise :class:`LockBusyError` at once if another process holds it.
    ``wait=True``: wait until it is free (``timeout_s``: then raise :class:`LockBusyError`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            if not wait or (timeout_s is not None and time.monotonic() - t0 > timeout_s):
                raise LockBusyError(path, what, holder(path)) from None
            time.sleep(poll_s)
            continue
        # the previous holder may have removed (or a new holder re-created) the file meanwhile
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        break
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": utc_now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)  # releases the flock
