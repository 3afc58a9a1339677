"""The database: declarative base, engine, and one session per request.

Queries flush but never commit; the view or CLI command that owns the unit of
work commits. With the embedded default the first use of the database in a
process makes sure the cluster runs, the database exists and is migrated.
"""

from __future__ import annotations

import collections
import functools
import logging
import re
import select
import threading
import time
from dataclasses import dataclass, field

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import MetaData, create_engine, event, exc, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

logger = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


@dataclass
class Database:
    """The engine and session factory of one app, and whether it is ready for use."""

    url: str
    embedded: bool
    auto_migrate: bool
    var_dir: str
    require_durable: bool = True
    engine: Engine = field(init=False)
    sessions: sessionmaker[Session] = field(init=False)
    _ready: bool = field(default=False, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.engine = make_engine(self.url)
        self.sessions = sessionmaker(bind=self.engine, expire_on_commit=False)

    def ensure_ready(self) -> None:
        """Start the embedded cluster, create the database and migrate, once per process."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            if self.embedded:
                from pathlib import Path

                from webapp.pgcluster import EmbeddedCluster

                EmbeddedCluster(Path(self.var_dir)).start()
                create_database(self.url)
            if self.auto_migrate:
                from webapp.migrate import upgrade

                upgrade(self.engine)
            # Routing along roads needs pgRouting; without it routes are straight lines.
            create_extension_if_available(self.engine, "pgrouting")
            if self.require_durable:
                check_durability(self.engine)
            self._ready = True


def make_engine(url: str) -> Engine:
    """Make an engine that survives a database restart and never acknowledges early.

    Connections that died with a restarted server are replaced when taken from the
    pool (:func:`watch_liveness`), so the first request after a restart succeeds
    without restarting the app. Every new connection sets ``synchronous_commit = on``:
    a commit is on disk (WAL flushed) before the app tells anyone "received",
    whatever the server's default.
    """
    engine = create_engine(
        url,
        # Not SQLAlchemy's pre-ping (a round trip on every checkout, ~a tenth of a
        # field report): watch_liveness below asks the socket instead.
        pool_pre_ping=False,
        pool_size=5,
        max_overflow=10,
        pool_recycle=3600,
        connect_args={
            "connect_timeout": 5,
            "application_name": "gridcase",
            # temp_buffers: room for a bulk load's staging tables in memory (a session's
            # temporary buffers are only taken as used, and the limit cannot be raised
            # once a session has touched a temporary table).
            "options": "-c synchronous_commit=on -c temp_buffers=512MB",
        },
    )
    watch_liveness(engine)
    return engine


# A connection idle in the pool for longer than this is pinged (a round trip) when
# taken out; a busier one is only looked at (no round trip).
IDLE_PING_SECONDS = 30.0


def watch_liveness(engine: Engine) -> None:
    """Replace a dead pooled connection at checkout, without a round trip when it is busy.

    An idle PostgreSQL connection has nothing to read: when a server stops or restarts
    it sends a FATAL message and closes the socket, which then polls readable. So a
    connection whose socket is readable (or closed), or that sat in the pool longer
    than :data:`IDLE_PING_SECONDS` (a peer that vanished without closing), is pinged;
    if the ping fails the whole pool is dropped (the server restarted: every pooled
    connection is dead) and SQLAlchemy connects afresh for this checkout. A failure
    that slips past (the server dies between checkout and statement) is a disconnect
    error that invalidates the pool too; that one request answers 503
    (``db_unavailable``), the next ones reconnect.
    """

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_connection, record) -> None:
        record.info["gridcase_idle_since"] = time.monotonic()
        if dbapi_connection is not None and dbapi_connection.autocommit:
            dbapi_connection.autocommit = False  # after a single_statement_writes request

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection, record, proxy) -> None:
        idle_since = record.info.pop("gridcase_idle_since", None)
        if idle_since is None:  # a fresh connection
            return
        if (
            not _socket_quiet(dbapi_connection) or time.monotonic() - idle_since > IDLE_PING_SECONDS
        ) and not _ping(engine, dbapi_connection):
            raise exc.InvalidatePoolError("the database connection is gone")


def _socket_quiet(dbapi_connection) -> bool:
    """True if the connection is open and the server has sent nothing since it went idle."""
    try:
        if getattr(dbapi_connection, "closed", 0):
            return False
        # poll, not select: select cannot watch a descriptor numbered 1024 or above.
        watcher = select.poll()
        watcher.register(dbapi_connection.fileno(), select.POLLIN | select.POLLPRI)
        events = watcher.poll(0)
    except (OSError, ValueError, AttributeError):
        return False
    return not events


def _ping(engine: Engine, dbapi_connection) -> bool:
    try:
        return bool(engine.dialect.do_ping(dbapi_connection))
    except engine.dialect.loaded_dbapi.Error:
        return False


def create_extension_if_available(engine: Engine, name: str) -> bool:
    """Create the optional extension ``name`` if the server offers it; return whether it exists.

    An extension the server does not have, or that this user may not create (an
    external server), is not an error: the features that need it fall back.
    """
    with engine.connect() as conn:
        installed = conn.execute(
            text("SELECT 1 FROM pg_extension WHERE extname = :n"), {"n": name}
        ).scalar()
        if installed:
            return True
        available = conn.execute(
            text("SELECT 1 FROM pg_available_extensions WHERE name = :n"), {"n": name}
        ).scalar()
        if not available:
            return False
        try:
            conn.execute(text(f'CREATE EXTENSION IF NOT EXISTS "{name}"'))
            conn.commit()
        except SQLAlchemyError as exc:
            conn.rollback()
            logger.warning("extension %s not created: %s", name, str(exc).splitlines()[0])
            return False
        return True


class UnsafeDatabase(RuntimeError):
    """The server is configured so that a commit could be lost in a crash."""


def check_durability(engine: Engine) -> dict[str, str]:
    """Refuse a server that could lose acknowledged commits (fsync or full_page_writes off).

    Returns the settings read. ``synchronous_commit`` is forced on per connection
    (see :func:`make_engine`) and checked too.
    """
    with engine.connect() as conn:
        settings = dict(
            conn.execute(
                text(
                    "SELECT name, setting FROM pg_settings "
                    "WHERE name IN ('fsync', 'full_page_writes', 'synchronous_commit')"
                )
            ).all()
        )
    bad = [
        name
        for name in ("fsync", "full_page_writes", "synchronous_commit")
        if settings.get(name) != "on"
    ]
    if bad:
        raise UnsafeDatabase(
            f"数据库设置 {', '.join(bad)} 未开启，已确认的上报可能在崩溃后丢失，拒绝启动。"
            f" Refusing to run: {', '.join(bad)} must be on so that acknowledged reports survive a crash"
            " (set GRIDCASE_ALLOW_UNSAFE_DB=1 only for throwaway test databases)."
        )
    return settings


def create_database_sql(name: str) -> str:
    """``CREATE DATABASE`` for a new database of the app: UTF-8, text ordered by code point.

    ``LC_COLLATE 'C'`` orders text exactly as ``C.UTF-8`` does (by code point: codes,
    phone and ID numbers, Chinese names alike) but lets PostgreSQL compare with memcmp
    and abbreviated keys instead of calling the C library for every comparison (at a
    million cases the index on petitioner phones built in 0.9 s instead of 2.0 s, the
    one on numbers in 0.66 s instead of 0.8 s), and sorts and groupings on codes gain
    alike. The character classes (``LC_CTYPE``) stay the server's.
    """
    return f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C'"


def create_database(url: str) -> bool:
    """Create the database named in ``url`` if it does not exist; return True if created."""
    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": u.database}
            ).scalar()
            if exists:
                return False
            try:
                conn.execute(text(create_database_sql(u.database)))
            except exc.DBAPIError:  # a server whose locale cannot hold UTF-8 with C order
                logger.warning("creating %s with the server's default collation", u.database)
                conn.execute(text(f'CREATE DATABASE "{u.database}"'))
            return True
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    """Drop the database named in ``url`` (tests only), closing its connections first."""
    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def init_app(app: Flask) -> None:
    app.extensions["gridcase.db"] = Database(
        url=app.config["DATABASE_URL"],
        embedded=app.config["EMBEDDED_DB"],
        auto_migrate=app.config["AUTO_MIGRATE"],
        var_dir=app.config["VAR_DIR"],
        require_durable=not app.config.get("ALLOW_UNSAFE_DB", False),
    )
    app.teardown_appcontext(_close_session)


def database(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["gridcase.db"]


def get_session() -> Session:
    """Return this request's (or app context's) session, opening it on first use.

    For a view marked :func:`single_statement_writes` the session's connection runs in
    autocommit (see there).
    """
    if "db_session" not in g:
        db = database()
        db.ensure_ready()
        session = db.sessions()
        if _single_statement_request() and isinstance(session.bind, Engine):
            # On the driver's connection, not SQLAlchemy's isolation_level option: that
            # one costs a SET round trip when the connection goes back to the pool.
            # psycopg2 switches autocommit without a round trip; _checkin switches back.
            session.connection().connection.dbapi_connection.autocommit = True
        g.db_session = session
    return g.db_session


def single_statement_writes(view):
    """Mark a view whose request writes at most once, in one self-contained SQL statement.

    Its session runs in autocommit: no ``BEGIN`` before the signed-in user is read and
    no ``COMMIT`` after the write, which commits itself when the statement completes
    (``synchronous_commit = on``: on disk before the view answers). A field report went
    from four round trips to the database to two; on two busy cores every round trip is
    a wait for the server and then for the GIL. Only for a view where nothing that must
    be atomic spans two statements, and whose reads need not see one snapshot; a
    session bound to a connection (tests: a rolled-back outer transaction) keeps its
    transaction.
    """
    view.single_statement_writes = True
    return view


def _single_statement_request() -> bool:
    if not has_request_context():
        return False
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "single_statement_writes", False)


def _close_session(exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        if exc is not None:
            session.rollback()
        session.close()


@functools.lru_cache(maxsize=64)
def _row_type(names: tuple[str, ...]) -> type:
    return collections.namedtuple("Row", names, rename=True)  # type: ignore[misc]


class DriverResult:
    """The rows of :func:`driver_execute`, read by column name (``row.id``) or position."""

    def __init__(self, rows: list[tuple]) -> None:
        self.rows = rows

    def all(self) -> list[tuple]:
        return self.rows

    def first(self):
        return self.rows[0] if self.rows else None

    def one_or_none(self):
        if len(self.rows) > 1:
            raise exc.MultipleResultsFound("more than one row where at most one was expected")
        return self.first()

    def one(self):
        row = self.one_or_none()
        if row is None:
            raise exc.NoResultFound("no row where one was expected")
        return row


def driver_execute(connection: Connection, statement: str, parameters: dict) -> DriverResult:
    """The rows of ``statement`` (driver SQL, ``%(name)s`` parameters) on ``connection``.

    As ``connection.exec_driver_sql(...).all()`` but on the driver's cursor, without
    SQLAlchemy's execution context and result object (about 0.1 ms per statement of a
    field report's ~3 ms of app CPU; for the hot one-row statements only). Everything
    else is kept: the statement runs in the connection's transaction (or autocommit),
    ``before_cursor_execute`` listeners see it, and a driver error is SQLAlchemy's
    ``DBAPIError`` as for any statement, a lost connection being invalidated (the
    app's 503 and the pool's reconnect work as usual).
    """
    if not connection.in_transaction():
        connection.begin()  # as SQLAlchemy's autobegin: commit() and rollback() apply
    fairy = connection.connection
    cursor = fairy.cursor()
    try:
        if connection.dispatch.before_cursor_execute:
            connection.dispatch.before_cursor_execute(
                connection, cursor, statement, parameters, None, False
            )
        cursor.execute(statement, parameters)
        if cursor.description is None:
            return DriverResult([])
        row = _row_type(tuple(column[0] for column in cursor.description))
        return DriverResult([row._make(r) for r in cursor.fetchall()])
    except connection.dialect.loaded_dbapi.Error as err:
        dialect = connection.dialect
        lost = dialect.is_disconnect(err, fairy.dbapi_connection, cursor)
        if lost:
            connection.invalidate(err)
        raise exc.DBAPIError.instance(
            statement,
            parameters,
            err,
            dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=dialect,
        ) from err
    finally:
        cursor.close()


class Prepared:
    """A statement prepared once per database connection, then only executed.

    For a hot single statement whose planning is a good part of its cost (the field
    report's INSERT: ~0.7 ms of planning for ~1.5 ms of execution). ``types`` names
    every ``:param`` of ``sql`` with its PostgreSQL type, in the order of the
    prepared statement's ``$n``. PREPARE is not transactional: once made on a
    connection it stays until the connection closes (and a reconnected connection
    starts with an empty ``info``, so it is prepared again).
    """

    _PARAM = re.compile(r"(?<![:\w]):(\w+)")

    def __init__(self, name: str, sql: str, types: dict[str, str]) -> None:
        order = list(types)
        used = set(self._PARAM.findall(sql))
        if used != set(order):
            raise ValueError(f"parameters and types differ: {sorted(used ^ set(order))}")
        body = self._PARAM.sub(lambda m: f"${order.index(m.group(1)) + 1}", sql)
        if "%" in body:
            raise ValueError("a prepared statement's SQL may not contain %")
        self.name = name
        self.params = tuple(order)
        self.prepare_sql = f"PREPARE {name} ({', '.join(types.values())}) AS {body}"
        # Handed to the driver's cursor as it is (no SQL compilation, no bind processing:
        # the prepared statement's types convert the values; see driver_execute).
        self.execute_sql = f"EXECUTE {name} ({', '.join(f'%({n})s' for n in order)})"

    def execute(self, session: Session, params: dict):
        if params.keys() != set(self.params):
            raise ValueError(f"parameters differ: {sorted(params.keys() ^ set(self.params))}")
        conn = session.connection()
        prepared = conn.connection.info.setdefault("gridcase_prepared", set())
        if self.name not in prepared:
            conn.exec_driver_sql(self.prepare_sql)
            prepared.add(self.name)
        return driver_execute(conn, self.execute_sql, params)
