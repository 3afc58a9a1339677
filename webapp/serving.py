"""gunicorn's threaded worker, taking new connections in turn with its siblings.

gunicorn's workers share one listening socket and whichever wakes first takes a new
connection. Clients that keep their connection (phones posting reports, a load
generator) then stay where they landed: two workers held 13 and 7 of 20 connections in
the field bench, and the busier worker's clients waited about twice as long
(bench/findings.md). :class:`BalancedThreadWorker` takes a new connection only while it
holds no more connections than the least busy of its live siblings. The workers publish
their counts in a small table of shared memory (:class:`SiblingTable`) that the master
makes when it loads this module, before it forks them.

Serve with ``gunicorn --worker-class webapp.serving.BalancedThreadWorker`` (``make run``
does).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import time

from gunicorn.workers.gthread import ThreadWorker

# A sibling whose loop has not published for this long is ignored: it is gone or stuck.
# A worker's loop publishes at least once a second (its poller's timeout).
STALE_AFTER = 3.0


class SiblingTable:
    """Connections held by each worker, in memory shared by the master and its workers."""

    def __init__(self, slots: int = 64) -> None:
        self._pids = multiprocessing.RawArray(ctypes.c_long, slots)
        self._conns = multiprocessing.RawArray(ctypes.c_long, slots)
        self._seen = multiprocessing.RawArray(ctypes.c_double, slots)
        self._used = multiprocessing.RawValue(ctypes.c_long, 0)  # slots ever claimed
        self._lock = multiprocessing.Lock()

    def claim(self, pid: int, now: float) -> int | None:
        """A slot for worker ``pid``: a free one, or one whose worker stopped publishing.

        None when the table is full: that worker then accepts like gunicorn's own.
        """
        with self._lock:
            for i in range(len(self._pids)):
                if i >= self._used.value or not self._pids[i] or now - self._seen[i] > STALE_AFTER:
                    self._pids[i], self._conns[i], self._seen[i] = pid, 0, now
                    self._used.value = max(self._used.value, i + 1)
                    return i
        return None

    def release(self, slot: int | None) -> None:
        """Leave the table (one store, safe in a signal handler: no lock taken)."""
        if slot is not None:
            self._pids[slot] = 0

    def may_accept(self, slot: int | None, conns: int, now: float) -> bool:
        """Publish ``conns`` for ``slot``; True unless a live sibling holds fewer."""
        if slot is None:
            return True
        with self._lock:
            self._conns[slot], self._seen[slot] = conns, now
            for i in range(self._used.value):
                if (
                    i != slot
                    and self._pids[i]
                    and now - self._seen[i] <= STALE_AFTER
                    and self._conns[i] < conns
                ):
                    return False
        return True


SIBLINGS = SiblingTable()


class BalancedThreadWorker(ThreadWorker):
    """gunicorn's ``gthread`` worker that accepts only while no live sibling holds fewer.

    gthread's loop asks ``nr_conns < worker_connections`` once per turn (at least once a
    second) and listens on the shared socket only while that holds; here the limit
    answered is the configured one while this worker is among the least busy, and its
    current count otherwise, so the least busy sibling takes the next connection.
    """

    _slot: int | None = None

    def init_process(self) -> None:
        self._slot = SIBLINGS.claim(os.getpid(), time.monotonic())
        super().init_process()

    @property
    def worker_connections(self) -> int:
        if self.alive and SIBLINGS.may_accept(self._slot, self.nr_conns, time.monotonic()):
            return self._limit
        return min(self.nr_conns, self._limit)

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        self._limit = value

    def handle_exit(self, sig, frame) -> None:
        # A stopping worker leaves at once: siblings must not hold back for its count.
        SIBLINGS.release(self._slot)
        super().handle_exit(sig, frame)

    def run(self) -> None:
        try:
            super().run()
        finally:
            SIBLINGS.release(self._slot)
