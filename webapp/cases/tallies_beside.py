"""A first load's tallies, computed in a second session while the cases are copied.

A rebuilding load into empty ``cases`` and empty tallies (the demo county's first load)
used to tally its cases after copying them, one core of two busy for most of it (the
tally pass at a million cases: 6 s of a 26 s load). The cases it copies are known to
the client before they are stored, so the tallies can be computed beside: a second
connection copies the columns the tally pass reads into temporary tables named like
the real ones (``cases`` and the three tallies; the temporary schema comes first in
the search path), and calls the very function a load calls,
``case_tallies_add_cases('cases')``, on them. No tally is computed by any other code:
the groups are the function's, and the real tallies receive them by a binary ``COPY``
in the load's own transaction, which stays the only one that writes. The second
session writes nothing but its temporary tables and rolls back.

The second session must not wait for a lock the load holds (the load waits for it):
it reads the table definitions nowhere but in what the load hands it, built from the
catalog before it starts (:func:`TalliesBeside.start`), and the tally function reads
no other table.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Sequence
from concurrent.futures import Future

from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.cases import pgcopy
from webapp.cases.beside import run_beside
from webapp.stats.tallies import ALL_TABLES as TALLY_TABLES

_COLUMNS_SQL = """
    SELECT a.attname, format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid)
    FROM pg_attribute a
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = CAST(:table AS regclass) AND a.attnum > 0 AND NOT a.attisdropped
      AND a.attgenerated = ''
    ORDER BY a.attnum
"""


def _columns(session: Session, table: str) -> list[tuple[str, str, str | None]]:
    return [tuple(r) for r in session.execute(text(_COLUMNS_SQL), {"table": table}).all()]


def read_columns(session: Session) -> set[str]:
    """The columns of ``cases`` the tally function names (every word of its text that is one)."""
    return set(_read_columns(session))


def _read_columns(session: Session) -> dict[str, str]:
    """:func:`read_columns` with their types."""
    body = session.execute(
        text(
            "SELECT string_agg(pg_get_functiondef(oid), ' ') FROM pg_proc "
            "WHERE proname = 'case_tallies_add_cases'"
        )
    ).scalar_one()
    words = set(re.findall(r"\w+", body or ""))
    return {name: kind for name, kind, _ in _columns(session, "cases") if name in words}


class TalliesBeside:
    """The tally groups of the cases being copied, computed in a thread on a connection of its own."""

    def __init__(self) -> None:
        self._future: Future | None = None
        self._connection = None
        self.seconds = 0.0

    @classmethod
    def start(
        cls,
        session: Session,
        names: Sequence[str],
        columns: Sequence,
        slices: Sequence[tuple[int, int]],
    ) -> TalliesBeside | None:
        """Start computing the tallies of the rows of ``columns`` (named ``names``) in ``slices``.

        ``slices``: (start, stop) of the rows, in the order they are copied.

        None when the tally function reads a column the rows do not carry (then the load
        tallies its cases itself, after copying them).
        """
        read = _read_columns(session)
        if not read or not read.keys() <= set(names):
            return None
        sent = [name for name in names if name in read]
        ddl = [
            "CREATE TEMP TABLE cases ("
            + ", ".join(f"{name} {read[name]}" for name in sent)
            + ") ON COMMIT DROP"
        ]
        tallies = {}
        for table in TALLY_TABLES:
            cols = _columns(session, table)
            tallies[table] = [name for name, _, _ in cols]
            ddl.append(
                f"CREATE TEMP TABLE {table} ("
                + ", ".join(
                    f"{name} {kind}" + (f" DEFAULT {default}" if default else "")
                    for name, kind, default in cols
                )
                + ") ON COMMIT DROP"
            )
        picked = [columns[names.index(name)] for name in sent]

        def work(cur) -> dict[str, tuple[list[str], bytes]]:
            started = time.perf_counter()
            cur.execute("SET LOCAL search_path = pg_temp, public")
            for statement in ddl:
                cur.execute(statement)
            cur.copy_expert(
                f"COPY cases ({', '.join(sent)}) FROM STDIN (FORMAT binary)",
                pgcopy.ChunkReader(pgcopy.copy_rows(picked, slices)),
                size=1 << 20,
            )
            cur.execute("ANALYZE cases")
            cur.execute("SELECT case_tallies_add_cases('cases')")
            out = {}
            for table, cols in tallies.items():
                buf = io.BytesIO()
                cur.copy_expert(
                    f"COPY pg_temp.{table} ({', '.join(cols)}) TO STDOUT (FORMAT binary)", buf
                )
                out[table] = (cols, buf.getvalue())
            beside.seconds = time.perf_counter() - started
            return out

        beside = cls()
        beside._future, beside._connection = run_beside(
            session.get_bind().engine, work, "tallies-beside"
        )
        return beside

    def copy_into(self, session: Session) -> int:
        """Wait for the groups and COPY them into the (empty) tallies. Returns the rows copied."""
        groups = self._future.result()
        raw = session.connection().connection.dbapi_connection
        copied = 0
        with raw.cursor() as cur:
            for table, (cols, data) in groups.items():
                cur.copy_expert(
                    f"COPY public.{table} ({', '.join(cols)}) FROM STDIN (FORMAT binary)",
                    io.BytesIO(data),
                )
                copied += cur.rowcount
        return copied

    def cancel(self) -> None:
        """The load failed: stop the second session's statement and wait for it to end."""
        try:
            self._connection.dbapi_connection.cancel()
        except Exception:  # noqa: BLE001 - ended already, or never started its statement
            pass
        try:
            self._future.exception()
        except Exception:  # noqa: BLE001
            pass
