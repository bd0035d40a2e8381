"""The desk's database: the engine, SQLite's settings, transactions and migrations.

SQLite (a file in the data directory, WAL mode) is the embedded default; PostgreSQL is
reached with a `postgresql+psycopg://` URL. Every write goes through `Database.write()`,
one transaction at a time per process on SQLite (see `write`), and the Alembic migrations
shipped in `migrations/` run whenever a database is opened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, Dialect, Engine, Table, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session

SQLITE_FILE_NAME = "desk.sqlite3"
# Read-only transactions are marked with this execution option so that SQLite opens them
# deferred (readers never block the writer in WAL mode) while writes take the lock up front.
READ_ONLY = "securecomm_read_only"
# A fixed key for PostgreSQL's advisory lock, so two processes never migrate at once.
MIGRATION_LOCK_KEY = 0x5EC0_DE5C


class DatabaseError(RuntimeError):
    """The database cannot be opened or is not a desk's database; the message says why."""


def database_url(data_dir: Path, explicit_url: str | None = None) -> str:
    """The URL to use: the one given, else the SQLite file in the data directory."""
    if explicit_url:
        return explicit_url
    return f"sqlite:///{(data_dir / SQLITE_FILE_NAME).resolve()}"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below): pysqlite's own transaction handling
        # would start SELECTs outside any transaction and upgrade locks too late.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the client hears 201, so an acknowledged intake
        # survives a crash of the machine, not only of the process. It costs ~0.2 ms here.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock at the start, so a transaction that reads the audit
        # chain's head and then appends to it can never find the head moved under it.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_desk_engine(url: str) -> Engine:
    """An engine for a desk database URL (sqlite:///… or postgresql+psycopg://…)."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise DatabaseError(f"not a database URL: {url!r} ({error})") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise DatabaseError("the desk needs a SQLite file, not an in-memory database")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed, connect_args={"check_same_thread": False}, pool_size=8, max_overflow=24, pool_timeout=60
        )
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(parsed, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_timeout=60)
    raise DatabaseError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql+psycopg")


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("securecomm.desk") / "migrations"))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (run on every start; a no-op when current)."""
    config = _alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def schema_is_current(engine: Engine) -> bool:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head


# --- the hot path's statements, on the DBAPI cursor ---------------------------------------------
# The desk's busiest statements (a batch of intakes: its rows, its audit entries, the chain's head) are
# written once as SQL and run on the transaction's own DBAPI cursor, their parameters converted by the
# column types' own bind processors (SQLite's text form of a datetime, exactly as SQLAlchemy stores it).
# SQLAlchemy Core's work per statement (its compiled cache, parameter set-up, result and event machinery)
# was about two thirds of a batch's fixed cost (docs/desk.md); the statements and values are the same.


def driver_sql(dialect: Dialect, sql: str) -> str:
    """SQL written with `?` placeholders in the dialect's own parameter style (psycopg: `%s`)."""
    if dialect.paramstyle == "qmark":
        return sql
    return sql.replace("%", "%%").replace("?", "%s")


def driver_cursor(connection: Connection) -> Any:
    """The DBAPI cursor of the connection, in the transaction it is in."""
    return connection.connection.cursor()


def pipeline(connection: Connection) -> AbstractContextManager[Any]:
    """PostgreSQL: the statements made inside on the connection's DBAPI cursors go to the server together
    and their results come back in one round trip (psycopg's pipeline mode); SQLite: nothing to do."""
    if connection.dialect.name == "postgresql":
        return connection.connection.driver_connection.pipeline()
    return nullcontext()


Processor = Callable[[Any], Any] | None


def bind_processors(dialect: Dialect, columns: Sequence[Column[Any]]) -> tuple[Processor, ...]:
    return tuple(column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns)


def driver_values(processors: Sequence[Processor], values: Sequence[Any]) -> list[Any]:
    """Parameters for the DBAPI as SQLAlchemy would hand them over (None stays None)."""
    return [
        value if processor is None or value is None else processor(value)
        for processor, value in zip(processors, values, strict=True)
    ]


@dataclass(frozen=True)
class DriverInsert:
    """INSERT INTO table (every column) VALUES (…), for the DBAPI's executemany."""

    sql: str
    columns: tuple[str, ...]
    processors: tuple[Processor, ...]

    @classmethod
    def of(cls, table: Table, dialect: Dialect) -> DriverInsert:
        columns = list(table.columns)
        names = ", ".join(column.name for column in columns)
        sql = f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' for _ in columns)})"
        return cls(
            driver_sql(dialect, sql), tuple(column.name for column in columns), bind_processors(dialect, columns)
        )

    def rows(self, rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
        # Only the columns that have a processor are converted (SQLite: the dates and times): this runs for
        # every column of every row a batch writes.
        converted = [(position, processor) for position, processor in enumerate(self.processors) if processor]
        parameters = []
        for row in rows:
            values = [row[name] for name in self.columns]
            for position, processor in converted:
                if values[position] is not None:
                    values[position] = processor(values[position])
            parameters.append(values)
        return parameters


@dataclass
class Database:
    """An engine and the way the desk uses it: short write transactions, one at a time on SQLite."""

    engine: Engine
    _write_lock: Any = field(default_factory=nullcontext)

    def __post_init__(self) -> None:
        self._read_engine = self.engine.execution_options(**{READ_ONLY: True})
        self._thread = threading.local()  # .holds (a writer thread), .connection (the one it holds)
        self._held: set[Connection] = set()
        self._held_lock = threading.Lock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that may change things; committed on exit, rolled back on error.

        On SQLite the process queues its writers on a lock instead of letting them wait in
        SQLite's busy handler, which sleeps in growing steps and ruins tail latency.
        """
        with self._write_lock, Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def hold_write_connections(self) -> None:
        """Let the calling thread keep its connection of `write_connection` from one transaction to the next
        (the server's writer threads, which write all day): no checkout from the pool and return to it, and
        on PostgreSQL no ping (`pool_pre_ping`: a round trip), for each transaction. A transaction that
        fails drops the connection it ran on; the next one checks a fresh one out, pinged."""
        self._thread.holds = True

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """Like `write`, on a bare connection (no ORM session): the desk's hot path."""
        if not getattr(self._thread, "holds", False):
            with self._write_lock, self.engine.begin() as connection:
                yield connection
            return
        with self._write_lock:
            connection = getattr(self._thread, "connection", None)
            if connection is None or connection.closed:
                connection = self._thread.connection = self.engine.connect()
                with self._held_lock:
                    self._held.add(connection)
            try:
                with connection.begin():
                    yield connection
            except BaseException:
                # Rolled back; the connection may be the cause (the server restarted, the link broke).
                self._drop(connection)
                raise

    def _drop(self, connection: Connection) -> None:
        with self._held_lock:
            self._held.discard(connection)
        connection.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (a consistent snapshot; never blocks the writer)."""
        with Session(self._read_engine, expire_on_commit=False) as session, session.begin():
            yield session

    def dispose(self) -> None:
        with self._held_lock:
            held, self._held = self._held, set()
        for connection in held:
            connection.close()
        self.engine.dispose()


def open_database(url: str, *, run_migrations: bool = True) -> Database:
    """Open (and by default migrate) the desk database at `url`."""
    engine = create_desk_engine(url)
    try:
        if run_migrations:
            migrate(engine)
    except Exception as error:
        engine.dispose()
        raise DatabaseError(f"cannot open the desk database: {error}") from error
    if engine.dialect.name == "sqlite":
        # It holds personal data of people in custody: readable by the desk's own account only.
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{engine.url.database}{suffix}")
            if path.exists():
                path.chmod(0o600)
    lock = threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
    return Database(engine, lock)
