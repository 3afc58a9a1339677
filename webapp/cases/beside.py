"""Work a load hands to a session of its own, run in a thread while the load goes on.

Such a session only reads what is committed and writes temporary tables: it rolls back
and its connection goes back to the pool when the work ends, whatever happens. The
load gets the work's result, or its exception, from the future.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future


def run_beside(engine, work: Callable, name: str) -> tuple[Future, object]:
    """Start ``work(cursor)`` on a new connection of ``engine``; (its future, the connection).

    The connection is taken here, before the thread starts, so that the caller may
    cancel its statement (``connection.dbapi_connection.cancel()``).
    """
    raw = engine.raw_connection()
    future: Future = Future()

    def run() -> None:
        try:
            with raw.cursor() as cur:
                future.set_result(work(cur))
        except BaseException as exc:  # handed to the load, which raises it
            future.set_exception(exc)
        finally:
            try:
                raw.rollback()
            finally:
                raw.close()

    threading.Thread(target=run, name=name, daemon=True).start()
    return future, raw
