"""The step's write: new instance row, step events and receipt as one transaction, in as few
round trips as the database allows.

A step writes the same columns every time, so its SQL is rendered once per dialect and sent
through the driver's own cursor (SQLAlchemy's statement building and result machinery cost
more than SQLite itself takes for the write).

* PostgreSQL: one statement, sent on an autocommit connection, so the statement is the
  transaction: a data-modifying CTE updates the instance row where its version is the
  expected one, and inserts the events (and the message receipt) only for the row it
  updated. A stale version writes nothing and counts 0; a duplicate receipt fails the whole
  statement. One round trip and one commit instead of BEGIN, UPDATE, INSERT, COMMIT.
* SQLite: BEGIN IMMEDIATE, UPDATE (version-checked), INSERT events, INSERT receipt, COMMIT on
  the raw sqlite3 connection; any failure rolls the whole step back.
* A row the caller asked to be written along with the step (`engine.runtime.Along`, such as
  the service's stored answer to an idempotent request) is one more INSERT in the same
  transaction: one more CTE in PostgreSQL's statement, one more statement before SQLite's
  COMMIT. A duplicate key there fails the whole step, as a duplicate receipt does.
* A step that makes a catch start waiting for a message (rare next to the others) is an
  ordinary transaction on both: it locks the prospect's held events, checks they are the ones
  the step read, writes the step as above, and marks the held events it delivered or found
  expired (`engine.runtime.held`).

Connections that went away (a restarted server, an idle timeout) are not pinged before use:
a step whose connection turns out dead is retried once on a fresh one. A PostgreSQL step is
one statement, so a retry after a lost reply cannot apply it twice: the version it expects is
gone and the retry reports a conflict.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy.exc import IntegrityError

from engine.runtime import held as held_events
from engine.runtime._acts import HeldChanged
from engine.runtime.queries import INSTANCE, RECEIPT, STEP_EVENT
from engine.store.database import Store

# Instance columns a step sets (besides clearing a timer worker's lease). On SQLite a step
# leaves out those of KEPT_IF_SAME whose value it does not change (`StepPipeline.prepare`).
KEPT_IF_SAME = ("status", "active_key", "next_due_at", "card_due_at")
STEP_COLUMNS = ("waiting", "next_due_at", "card_due_at", "updated_at", "status", "active_key",
                "version", "state", "chain_head", "visits")
# Event columns a step writes per row; instance_id is the updated row's id.
EVENT_COLUMNS = ("step_id", "step_name", "kind", "actor", "data", "hook", "content_shown",
                 "content_used", "propensity", "policy_version", "chain", "visit_ms", "paired",
                 "at")
RECEIPT_COLUMNS = ("message_id", "message", "prospect_id", "data", "received_at")
_PG_ARRAY_TYPES = {"propensity": "float8", "policy_version": "int4", "visit_ms": "int8",
                   "paired": "bool", "at": "timestamp"}


AlongRow = tuple[str, dict[str, Any]]
"""A row written along with a step: its table's name and its values."""

StepWrite = tuple[int, int, dict[str, Any], list[dict[str, Any]], dict[str, Any] | None,
                  "held_events.Taken | None"]
"""One step of a group: instance id, expected version, values, event rows, receipt, held."""


class Conflict(Exception):
    """The instance's stored version is not the expected one: nothing was written."""


class Disconnected(Exception):
    """The connection was found dead when the step was sent."""


class StepWriter:
    """Writes steps for one store; see the module docstring."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # What the driver raises for a duplicate receipt (the step then wrote nothing).
        self.integrity_errors: type[Exception] = store.engine.dialect.loaded_dbapi.IntegrityError
        if store.is_sqlite:
            self._updates: dict[frozenset[str], tuple[str, tuple[str, ...]]] = {}
            self._insert_events = sqlite_insert(STEP_EVENT.name, ("instance_id", *EVENT_COLUMNS))
            self._insert_receipt = sqlite_insert(RECEIPT.name,
                                                  ("instance_id", *RECEIPT_COLUMNS))
        else:
            self._statement = _pg_statement(with_receipt=False)
            self._statement_receipt = _pg_statement(with_receipt=True)
            self._group_statement = _pg_group_statement()

    def write(
        self, instance_id: int, expected_version: int, values: dict[str, Any],
        rows: list[dict[str, Any]], receipt: dict[str, Any] | None,
        held: held_events.Taken | None = None, along: AlongRow | None = None,
        delivers: int | None = None,
    ) -> None:
        """Commit one step. Raises Conflict (nothing written) when the version moved on, and
        the driver's IntegrityError when the receipt or the `along` row was already stored
        (nothing written); with `held`, HeldChanged when the prospect's held events changed
        (nothing written). `delivers`: the id of a receipt an incident recorded, which the
        step (its retry) marks `delivered`."""
        if held is not None or delivers is not None:
            self._with_held(instance_id, expected_version, values, rows, receipt, held, along,
                            delivers)
            return
        if self.store.is_sqlite:
            self._sqlite(instance_id, expected_version, values, rows, receipt, along)
            return
        try:
            self._postgres(instance_id, expected_version, values, rows, receipt, along)
        except Disconnected:  # the pooled connection was dead: once more on a fresh one
            self._postgres(instance_id, expected_version, values, rows, receipt, along)

    def write_many(self, steps: Sequence[StepWrite]) -> list[bool]:
        """Commit many steps in one transaction; per step, whether it was written. A step whose
        version moved on, whose held events changed or whose receipt is a duplicate writes
        nothing (its own savepoint is rolled back) and the others commit."""
        if not steps:
            return []
        if (not self.store.is_sqlite and all(s[4] is None and s[5] is None for s in steps)
                and len({s[0] for s in steps}) == len(steps)):
            written = self._pg_group(steps)
            return [s[0] in written for s in steps]
        done: list[bool] = []
        with self.store.write() as conn:
            # The held events' locks in one order for the whole group: no lock cycles.
            held_events.lock(conn, [s[5].prospect_id for s in steps if s[5] is not None])
            driver: Any = conn.connection.driver_connection
            for instance_id, version, values, rows, receipt, held in steps:
                if held is None and receipt is None:
                    done.append(self._in(driver, instance_id, version, values, rows, None))
                    continue
                savepoint = conn.begin_nested()
                try:
                    if held is not None:
                        held_events.verify(conn, [held])
                    wrote = self._in(driver, instance_id, version, values, rows, receipt)
                    if wrote and held is not None:
                        held_events.settle(conn, held, instance_id, values["updated_at"])
                except (HeldChanged, IntegrityError, self.integrity_errors):
                    wrote = False
                if wrote:
                    savepoint.commit()
                else:
                    savepoint.rollback()
                done.append(wrote)
        return done

    def _sqlite_update(
        self, instance_id: int, expected_version: int, values: dict[str, Any],
    ) -> tuple[str, tuple[Any, ...]]:
        """The UPDATE of the columns `values` has (a step leaves out the indexed ones that
        keep their value: SQLite rewrites an index entry for every column set, changed or
        not) and its parameters; one statement per set of columns, made once."""
        present = frozenset(values).intersection(STEP_COLUMNS)
        found = self._updates.get(present)
        if found is None:
            columns = tuple(c for c in STEP_COLUMNS if c in present)
            found = self._updates[present] = (_sqlite_update(columns), columns)
        statement, columns = found
        return statement, (*(sqlite_value(values[c]) for c in columns), instance_id,
                           expected_version)

    def _in(
        self, driver: Any, instance_id: int, expected_version: int, values: dict[str, Any],
        rows: list[dict[str, Any]], receipt: dict[str, Any] | None,
    ) -> bool:
        """One step's statements inside the caller's transaction; whether the version matched
        (when it did not, nothing was written)."""
        if self.store.is_sqlite:
            return self._sqlite_step(driver, instance_id, expected_version, values, rows,
                                     receipt)
        statement, params = self._pg_params(instance_id, expected_version, values, rows, receipt)
        with driver.cursor() as cursor:
            cursor.execute(statement, params)
            return bool(cursor.fetchone()[0] == 1)

    def _with_held(
        self, instance_id: int, expected_version: int, values: dict[str, Any],
        rows: list[dict[str, Any]], receipt: dict[str, Any] | None,
        held: held_events.Taken | None, along: AlongRow | None, delivers: int | None = None,
    ) -> None:
        try:
            with self.store.write() as conn:
                if held is not None:
                    held_events.verify(conn, [held])
                if self.store.is_sqlite:
                    if conn.exec_driver_sql(*self._sqlite_update(
                            instance_id, expected_version, values)).rowcount != 1:
                        raise Conflict
                    if rows:
                        conn.exec_driver_sql(self._insert_events,
                                             sqlite_events(instance_id, rows))
                    if receipt is not None:
                        conn.exec_driver_sql(self._insert_receipt, (instance_id, *(
                            sqlite_value(receipt[c]) for c in RECEIPT_COLUMNS)))
                    if along is not None:
                        conn.exec_driver_sql(*_sqlite_along(along))
                else:
                    statement, params = self._pg_params(
                        instance_id, expected_version, values, rows, receipt, along)
                    if conn.exec_driver_sql(statement, params).scalar() != 1:
                        raise Conflict
                if held is not None:
                    held_events.settle(conn, held, instance_id, values["updated_at"])
                if delivers is not None:
                    held_events.deliver_incident(conn, delivers, values["updated_at"])
        except IntegrityError as exc:
            raise exc.orig from exc  # type: ignore[misc]  # as the fast paths raise it

    # -- SQLite ------------------------------------------------------------------------------

    def _sqlite(
        self, instance_id: int, expected_version: int, values: dict[str, Any],
        rows: list[dict[str, Any]], receipt: dict[str, Any] | None, along: AlongRow | None,
    ) -> None:
        own = self.store.step_connection()
        if own is not None:
            self._sqlite_on(own, instance_id, expected_version, values, rows, receipt, along)
            return
        raw = self.store.engine.raw_connection()
        try:
            self._sqlite_on(raw.driver_connection, instance_id, expected_version, values, rows,
                            receipt, along)
        finally:
            raw.close()  # back to the pool

    def _sqlite_step(
        self, conn: Any, instance_id: int, expected_version: int, values: dict[str, Any],
        rows: list[dict[str, Any]], receipt: dict[str, Any] | None,
    ) -> bool:
        """A step's statements on SQLite, in the caller's transaction; whether the version
        matched (when it did not, nothing was written)."""
        if conn.execute(*self._sqlite_update(instance_id, expected_version,
                                             values)).rowcount != 1:
            return False
        if rows:
            conn.executemany(self._insert_events, sqlite_events(instance_id, rows))
        if receipt is not None:
            conn.execute(self._insert_receipt, (instance_id, *(
                sqlite_value(receipt[c]) for c in RECEIPT_COLUMNS)))
        return True

    def _sqlite_on(
        self, conn: Any, instance_id: int, expected_version: int, values: dict[str, Any],
        rows: list[dict[str, Any]], receipt: dict[str, Any] | None, along: AlongRow | None,
    ) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if not self._sqlite_step(conn, instance_id, expected_version, values, rows,
                                     receipt):
                raise Conflict
            if along is not None:
                conn.execute(*_sqlite_along(along))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- PostgreSQL --------------------------------------------------------------------------

    def _postgres(
        self, instance_id: int, expected_version: int, values: dict[str, Any],
        rows: list[dict[str, Any]], receipt: dict[str, Any] | None, along: AlongRow | None,
    ) -> None:
        statement, params = self._pg_params(instance_id, expected_version, values, rows,
                                            receipt, along)
        # The pool's connection itself, in autocommit mode only for this statement: the
        # statement is its own transaction (no BEGIN and COMMIT round trips), and a SQLAlchemy
        # Connection (with its isolation level set and reset) would cost ~20 µs more a step.
        raw = self.store.engine.raw_connection()
        driver: Any = raw.driver_connection
        try:
            driver.autocommit = True
            cursor = _kept_cursor(raw.info, driver)
            cursor.execute(statement, params)
            updated = cursor.fetchone()[0]
        except Exception as exc:
            if driver.closed or driver.broken:
                # The others in the pool are likely dead too (a restarted server).
                raw.invalidate(exc)
                self.store.engine.dispose()
                raise Disconnected from exc
            raise
        finally:
            try:
                if not (driver.closed or driver.broken):
                    driver.autocommit = False  # as the pool hands it out
            except Exception:  # e.g. interrupted mid-statement: not fit to hand out again
                raw.invalidate()
            raw.close()
        if updated != 1:
            raise Conflict

    def _pg_group(self, steps: Sequence[StepWrite]) -> set[int]:
        """Plain steps of distinct instances (no receipt, no held events) in one statement on
        an autocommit connection: one round trip and one commit for the group, each row still
        version-checked; the ids of the instances written."""
        params: dict[str, Any] = {"s_id": [s[0] for s in steps],
                                  "s_expected": [s[1] for s in steps]}
        for column in STEP_COLUMNS:
            params[f"s_{column}"] = [s[2][column] for s in steps]
        params["e_instance_id"] = [s[0] for s in steps for _ in s[3]]
        for column in EVENT_COLUMNS:
            params[f"e_{column}"] = [r[column] for s in steps for r in s[3]]
        for attempt in range(2):
            with self.store.autocommit_engine.connect() as conn:
                driver: Any = conn.connection.driver_connection
                try:
                    with driver.cursor() as cursor:
                        cursor.execute(self._group_statement, params)
                        return {row[0] for row in cursor.fetchall()}
                except Exception as exc:
                    if attempt or not (driver.closed or driver.broken):
                        raise
                    # Dead pooled connection (a restarted server): once more on a fresh one.
                    # Were the group applied after all, its versions are gone and every step
                    # reports a conflict, to be redone alone on fresh state.
                    conn.invalidate(exc)
                    self.store.engine.dispose()
        raise AssertionError("unreachable")

    def _pg_params(
        self, instance_id: int, expected_version: int, values: dict[str, Any],
        rows: list[dict[str, Any]], receipt: dict[str, Any] | None,
        along: AlongRow | None = None,
    ) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {f"v_{c}": values[c] for c in STEP_COLUMNS}
        params["id"], params["expected"] = instance_id, expected_version
        for column in EVENT_COLUMNS:
            params[f"e_{column}"] = [r[column] for r in rows]
        if receipt is not None:
            params.update({f"r_{c}": receipt[c] for c in RECEIPT_COLUMNS})
        if along is not None:
            table, row = along
            params.update({f"a_{i}": value for i, value in enumerate(row.values())})
            return _pg_statement(receipt is not None, (table, tuple(row))), params
        return (self._statement if receipt is None else self._statement_receipt), params


def _kept_cursor(info: dict[str, Any], driver: Any) -> Any:
    """The pooled connection's own cursor for single steps. psycopg keeps a cursor's
    adaptation context (which dumper for which parameter type) while the same statement
    object is executed on it again, so a kept cursor dumps a step's fourteen event arrays
    in about 40 µs instead of about 100 µs with a new cursor. A cursor left over from an
    earlier (invalidated) connection of the same pool slot is not reused."""
    kept = info.get("nextmove_step_cursor")
    if kept is None or kept.connection is not driver or kept.closed:
        kept = info["nextmove_step_cursor"] = driver.cursor()
    return kept


def sqlite_value(value: Any) -> Any:
    """Parameters as SQLAlchemy's SQLite types store them (DateTime as ISO text)."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    return value


_EVENT_VALUES = itemgetter(*EVENT_COLUMNS)
_EVENT_AT = 1 + EVENT_COLUMNS.index("at")  # the only DateTime column, after instance_id


def sqlite_events(instance_id: int, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Event rows as `_insert_events`' parameters (`sqlite_value` of each column)."""
    out = []
    for row in rows:
        values = [instance_id, *_EVENT_VALUES(row)]
        values[_EVENT_AT] = sqlite_value(values[_EVENT_AT])
        out.append(tuple(values))
    return out


def _sqlite_update(columns: tuple[str, ...]) -> str:
    sets = ", ".join(f"{c} = ?" for c in columns)
    return (f"UPDATE {INSTANCE.name} SET {sets}, lease_owner = NULL, lease_until = NULL "
            "WHERE id = ? AND version = ?")


def sqlite_insert(table: str, columns: tuple[str, ...]) -> str:
    return (f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})")


def _sqlite_along(along: AlongRow) -> tuple[str, tuple[Any, ...]]:
    table, row = along
    return (_along_insert(table, tuple(row)), tuple(sqlite_value(v) for v in row.values()))


@lru_cache(maxsize=64)
def _along_insert(table: str, columns: tuple[str, ...]) -> str:
    return (f'INSERT INTO "{table}" ({_quoted(columns)}) '
            f"VALUES ({', '.join('?' for _ in columns)})")


def _quoted(columns: tuple[str, ...]) -> str:
    return ", ".join('"' + c + '"' for c in columns)


@lru_cache(maxsize=64)
def _pg_statement(with_receipt: bool, along: tuple[str, tuple[str, ...]] | None = None) -> str:
    sets = ", ".join(f"{c} = %(v_{c})s" for c in STEP_COLUMNS)
    # Binary arrays (%b): dumped by psycopg's C code, no text escaping per element.
    arrays = ", ".join(f"%(e_{c})b::{_PG_ARRAY_TYPES.get(c, 'text')}[]" for c in EVENT_COLUMNS)
    extra = ""
    if with_receipt:
        extra = (f", r AS (INSERT INTO {RECEIPT.name} (instance_id, "
                   f"{', '.join(RECEIPT_COLUMNS)}) SELECT u.id, "
                   + ", ".join(f"%(r_{c})s" for c in RECEIPT_COLUMNS) + " FROM u)")
    if along is not None:
        table, columns = along
        extra += (f', a AS (INSERT INTO "{table}" ({_quoted(columns)}) '
                    f"SELECT {', '.join(f'%(a_{i})s' for i in range(len(columns)))} FROM u)")
    # Events keep the order of the arrays (WITH ORDINALITY), so their ids follow the chain.
    return (
        f"WITH u AS (UPDATE {INSTANCE.name} SET {sets}, lease_owner = NULL, "
        "lease_until = NULL WHERE id = %(id)s AND version = %(expected)s RETURNING id), "
        f"e AS (INSERT INTO {STEP_EVENT.name} (instance_id, {', '.join(EVENT_COLUMNS)}) "
        f"SELECT u.id, {', '.join(f'x.{c}' for c in EVENT_COLUMNS)} FROM u CROSS JOIN "
        f"unnest({arrays}) WITH ORDINALITY AS x({', '.join(EVENT_COLUMNS)}, n) "
        f"ORDER BY x.n){extra} SELECT count(*) FROM u"
    )


_PG_STEP_TYPES = {"id": "int4", "expected": "int4", "version": "int4",
                  "next_due_at": "timestamp", "card_due_at": "timestamp",
                  "updated_at": "timestamp"}


def _pg_group_statement() -> str:
    """Many steps in one statement: the instance rows updated from arrays where each one's
    version is the expected one, and the events inserted only for the rows updated (in array
    order, so each instance's event ids follow its chain); returns the ids updated."""
    step = ("id", "expected", *STEP_COLUMNS)
    # Binary parameters (%b): long text in an array is then sent as it is, not escaped.
    steps = ", ".join(f"%(s_{c})b::{_PG_STEP_TYPES.get(c, 'text')}[]" for c in step)
    sets = ", ".join(f"{c} = s.{c}" for c in STEP_COLUMNS)
    event = ("instance_id", *EVENT_COLUMNS)
    events = ", ".join(f"%(e_{c})b::{_PG_ARRAY_TYPES.get(c, 'text')}[]"
                       for c in EVENT_COLUMNS)
    return (
        f"WITH s AS (SELECT * FROM unnest({steps}) AS s({', '.join(step)})), "
        f"u AS (UPDATE {INSTANCE.name} AS i SET {sets}, lease_owner = NULL, "
        "lease_until = NULL FROM s WHERE i.id = s.id AND i.version = s.expected "
        "RETURNING i.id), "
        f"e AS (INSERT INTO {STEP_EVENT.name} ({', '.join(event)}) "
        f"SELECT {', '.join(f'x.{c}' for c in event)} FROM unnest("
        f"%(e_instance_id)b::int4[], {events}) WITH ORDINALITY AS x({', '.join(event)}, n) "
        "WHERE x.instance_id IN (SELECT id FROM u) ORDER BY x.n) "
        "SELECT id FROM u"
    )
