"""Server-side prepared statements for the queue's hot statements on PostgreSQL.

PostgreSQL plans a statement again on every execution; the claim takes about 0.4 ms to plan
and 0.1 ms to run. A `Prepared` statement is prepared once per database connection (`PREPARE`)
and then run with `EXECUTE`, through SQLAlchemy, so its parameters and result columns are
converted exactly as the Core statement's would be. A connection that is replaced (after an
error, or recycled by the pool) prepares again on first use.

Set `CONVEYOR_PREPARED_STATEMENTS=0` behind a connection pooler in transaction mode (PgBouncer),
where a prepared statement does not follow the client from one server connection to the next.
"""

import functools
import re

import sqlalchemy as sa
from psycopg2 import extensions
from sqlalchemy.dialects import postgresql

# The execution option that lets a connection's hot statements run prepared.
OPTION = "conveyor_prepared"

_DIALECT = postgresql.psycopg2.dialect()
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


class Prepared:
    """One Core statement, prepared under `name` on each connection that runs it."""

    def __init__(self, name: str, statement: sa.Executable):
        compiled = statement.compile(dialect=_DIALECT)
        order: list[str] = []

        def substitute(match: re.Match) -> str:
            key = match.group(1)
            bind = compiled.binds[key]
            if not bind.required:
                # A constant of the statement (a status, a scope): written into the text, as
                # psycopg2 would, so the plan can use partial indexes such as the claim's.
                return _literal(bind)
            if key not in order:
                order.append(key)
            return f"${order.index(key) + 1}"

        body = _PLACEHOLDER.sub(substitute, compiled.string).replace("%%", "%")
        types = ", ".join(compiled.binds[key].type.compile(dialect=_DIALECT) for key in order)
        self.name = name
        self.prepare_sql = f"PREPARE {name} ({types}) AS {body}"
        # EXECUTE with the Core statement's parameter and result types (EXPLAIN can prefix it).
        self.call_sql = f"EXECUTE {name}({', '.join(':' + key for key in order)})"
        self.binds = [sa.bindparam(key, type_=compiled.binds[key].type) for key in order]
        self._afters: dict[str, sa.TextClause] = {}
        self.execute_sql = (
            sa.text(self.call_sql)
            .bindparams(*self.binds)
            .columns(*(sa.column(column.key, column.type) for column in statement.selected_columns))
        )

    def execute(self, connection: sa.Connection, params: dict, before: str = "") -> sa.CursorResult:
        """Run the statement on `connection` with `params`, preparing it there first if needed.
        `before`: a statement sent ahead of it in the same round trip (its result is dropped;
        its `:name` parameters come from `params` too)."""
        self.prepare(connection)
        return connection.execute(self._after(before) if before else self.execute_sql, params)

    def prepare(self, connection: sa.Connection) -> None:
        """Prepare the statement on `connection` unless it was already."""
        prepared = connection.info.setdefault("conveyor_prepared", set())
        if self.name not in prepared:
            with connection.connection.dbapi_connection.cursor() as cursor:
                cursor.execute(self.prepare_sql)
            prepared.add(self.name)

    def _after(self, before: str) -> sa.TextClause:
        # One query string, two statements: psycopg2 returns the last one's rows.
        if before not in self._afters:
            self._afters[before] = (
                sa.text(f"{before}; {self.call_sql}")
                .bindparams(*self.binds)
                .columns(*self.execute_sql.selected_columns)
            )
        return self._afters[before]


def _literal(bind: sa.BindParameter) -> str:
    if bind.effective_value is None:
        return "NULL"
    return bind.type.literal_processor(_DIALECT)(bind.effective_value)


@functools.cache
def of(name: str, statement: sa.Executable) -> Prepared:
    """Return the prepared form of `statement` (one of `sql`'s cached statements)."""
    return Prepared(name, statement)


def execute(session, name: str, statement: sa.Executable, params: dict, before: str = "") -> sa.Result:
    """Run `statement` prepared if `session` is a connection opened with the `OPTION`
    execution option (the hot autocommit connections), else as it is; `before` (see
    `Prepared.execute`) in the same round trip, or as a statement of its own."""
    if isinstance(session, sa.Connection) and session.get_execution_options().get(OPTION):
        return of(name, statement).execute(session, params, before)
    if before:
        session.execute(sa.text(before), params)
    return session.execute(statement, params)


def execute_committed(connection: sa.Connection, first: tuple, then: tuple, params: dict) -> sa.Row | None:
    """Run statement `first` and commit it, then `then` in a transaction of its own, on an
    autocommit connection; return `then`'s first row (`first`'s rows are dropped). Each is a
    `(name, Core statement)` pair as for `execute`; both take their parameters from `params`.
    Prepared (the `OPTION`), they go in one round trip: `BEGIN; EXECUTE first; COMMIT; EXECUTE
    then`. On an error the connection is rolled back (nothing to undo if `first` committed) and
    the error raised: whether `first` committed is then the caller's to find out."""
    if not connection.get_execution_options().get(OPTION):
        connection.execute(first[1], params)
        return connection.execute(then[1], params).first()
    before, after = of(*first), of(*then)
    before.prepare(connection)
    after.prepare(connection)
    try:
        return connection.execute(_committed(before, after), params).first()
    except sa.exc.DBAPIError:
        raw = connection.connection.dbapi_connection
        if raw is not None and not raw.closed and raw.get_transaction_status() != extensions.TRANSACTION_STATUS_IDLE:
            with raw.cursor() as cursor:
                cursor.execute("ROLLBACK")
        raise


@functools.cache
def _committed(first: Prepared, then: Prepared) -> sa.TextClause:
    binds = {bind.key: bind for bind in [*first.binds, *then.binds]}
    return (
        sa.text(f"BEGIN; {first.call_sql}; COMMIT; {then.call_sql}")
        .bindparams(*binds.values())
        .columns(*then.execute_sql.selected_columns)
    )
