"""WAL checkpoints of a SQLite database, taken by a thread of their own.

SQLite normally checkpoints inside the commit that pushes the write-ahead log past 1,000 pages:
that commit copies the pages into the database file and syncs both files, milliseconds on a fast
disk and far more on a slow one. certsmith commits on the event loop (the group commit), so such
a commit would stall every request of the process. Its writer connections therefore turn the
automatic checkpoints off, and this thread takes a PASSIVE checkpoint a few times a second: it
never blocks a writer or a reader, and the log stays small.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["Checkpointer"]

log = logging.getLogger("certsmith.store")


class Checkpointer:
    def __init__(self, path: str, interval_seconds: float = 0.25) -> None:
        self._path, self._interval = path, interval_seconds
        self._running: tuple[threading.Thread, threading.Event] | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the thread unless it runs (called before every write: it must cost nothing)."""
        if self._running is not None:
            return
        with self._lock:
            if self._running is None:
                stop = threading.Event()
                thread = threading.Thread(target=self._run, args=(stop,), name="certsmith-checkpoint", daemon=True)
                thread.start()
                self._running = (thread, stop)

    def stop(self) -> None:
        """Take a last checkpoint and stop the thread (a later write starts another)."""
        with self._lock:
            running, self._running = self._running, None
        if running is not None:
            thread, stop = running
            stop.set()
            thread.join(timeout=10)

    def _run(self, stop: threading.Event) -> None:
        connection = sqlite3.connect(self._path, timeout=1, check_same_thread=False)
        try:
            while True:
                stopping = stop.wait(self._interval)
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:  # another process's checkpoint, a moment of contention
                    log.debug("WAL checkpoint skipped: %s", error)
                if stopping:
                    return
        finally:
            connection.close()
