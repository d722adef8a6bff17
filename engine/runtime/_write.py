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
from typing import Any

from sqlalchemy.exc import IntegrityError

from engine.runtime import held as held_events
from engine.runtime._acts import HeldChanged
from engine.runtime.queries import INSTANCE, RECEIPT, STEP_EVENT
from engine.store.database import Store

# Instance columns a step sets (besides clearing a timer worker's lease). On SQLite a step
# leaves out those of KEPT_IF_SAME whose value it does not change (`StepPipeline.prepare`).
KEPT_IF_SAME = ("status", "active_key", "next_due_at")
STEP_COLUMNS = ("waiting", "next_due_at", "updated_at", "status", "active_key", "version",
                "state", "chain_head", "visits")
# Event columns a step writes per row; instance_id is the updated row's id.
EVENT_COLUMNS = ("step_id", "step_name", "kind", "actor", "data", "hook", "content_shown",
                 "content_used", "propensity", "policy_version", "chain", "visit_ms", "paired",
                 "at")
RECEIPT_COLUMNS = ("message_id", "message", "prospect_id", "data", "received_at")
_PG_ARRAY_TYPES = {"propensity": "float8", "policy_version": "int4", "visit_ms": "int8",
                   "paired": "bool", "at": "timestamp"}


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

    def write(
        self, instance_id: int, expected_version: int, values: dict[str, Any],
        rows: list[dict[str, Any]], receipt: dict[str, Any] | None,
        held: held_events.Taken | None = None,
    ) -> None:
        """Commit one step. Raises Conflict (nothing written) when the version moved on, and
        the driver's IntegrityError when the receipt was already stored (nothing written);
        with `held`, HeldChanged when the prospect's held events changed (nothing written)."""
        if held is not None:
            self._with_held(instance_id, expected_version, values, rows, receipt, held)
            return
        if self.store.is_sqlite:
            self._sqlite(instance_id, expected_version, values, rows, receipt)
            return
        try:
            self._postgres(instance_id, expected_version, values, rows, receipt)
        except Disconnected:  # the pooled connection was dead: once more on a fresh one
            self._postgres(instance_id, expected_version, values, rows, receipt)

    def write_many(self, steps: Sequence[StepWrite]) -> list[bool]:
        """Commit many steps in one transaction; per step, whether it was written. A step whose
        version moved on, whose held events changed or whose receipt is a duplicate writes
        nothing (its own savepoint is rolled back) and the others commit."""
        if not steps:
            return []
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
            if driver.execute(*self._sqlite_update(instance_id, expected_version,
                                                   values)).rowcount != 1:
                return False
            if rows:
                driver.executemany(self._insert_events, [
                    (instance_id, *(sqlite_value(r[c]) for c in EVENT_COLUMNS)) for r in rows])
            if receipt is not None:
                driver.execute(self._insert_receipt, (instance_id, *(
                    sqlite_value(receipt[c]) for c in RECEIPT_COLUMNS)))
            return True
        statement, params = self._pg_params(instance_id, expected_version, values, rows, receipt)
        with driver.cursor() as cursor:
            cursor.execute(statement, params)
            return bool(cursor.fetchone()[0] == 1)

    def _with_held(
        self, instance_id: int, expected_version: int, values: dict[str, Any],
        rows: list[dict[str, Any]], receipt: dict[str, Any] | None,
        held: held_events.Taken,
    ) -> None:
        try:
            with self.store.write() as conn:
                held_events.verify(conn, [held])
                if self.store.is_sqlite:
                    if conn.exec_driver_sql(*self._sqlite_update(
                            instance_id, expected_version, values)).rowcount != 1:
                        raise Conflict
                    if rows:
                        conn.exec_driver_sql(self._insert_events, [
                            (instance_id, *(sqlite_value(r[c]) for c in EVENT_COLUMNS))
                            for r in rows])
                    if receipt is not None:
                        conn.exec_driver_sql(self._insert_receipt, (instance_id, *(
                            sqlite_value(receipt[c]) for c in RECEIPT_COLUMNS)))
                else:
                    statement, params = self._pg_params(
                        instance_id, expected_version, values, rows, receipt)
                    if conn.exec_driver_sql(statement, params).scalar() != 1:
                        raise Conflict
                held_events.settle(conn, held, instance_id, values["updated_at"])
        except IntegrityError as exc:
            raise exc.orig from exc  # type: ignore[misc]  # as the fast paths raise it

    # -- SQLite ------------------------------------------------------------------------------

    def _sqlite(
        self, instance_id: int, expected_version: int, values: dict[str, Any],
        rows: list[dict[str, Any]], receipt: dict[str, Any] | None,
    ) -> None:
        raw = self.store.engine.raw_connection()
        try:
            conn: Any = raw.driver_connection
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute(*self._sqlite_update(instance_id, expected_version,
                                                     values)).rowcount != 1:
                    raise Conflict
                if rows:
                    conn.executemany(self._insert_events, [
                        (instance_id, *(sqlite_value(r[c]) for c in EVENT_COLUMNS))
                        for r in rows])
                if receipt is not None:
                    conn.execute(self._insert_receipt, (instance_id, *(
                        sqlite_value(receipt[c]) for c in RECEIPT_COLUMNS)))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            raw.close()  # back to the pool

    # -- PostgreSQL --------------------------------------------------------------------------

    def _postgres(
        self, instance_id: int, expected_version: int, values: dict[str, Any],
        rows: list[dict[str, Any]], receipt: dict[str, Any] | None,
    ) -> None:
        statement, params = self._pg_params(instance_id, expected_version, values, rows,
                                            receipt)
        with self.store.autocommit_engine.connect() as conn:
            driver: Any = conn.connection.driver_connection
            try:
                with driver.cursor() as cursor:
                    cursor.execute(statement, params)
                    updated = cursor.fetchone()[0]
            except Exception as exc:
                if driver.closed or driver.broken:
                    # The others in the pool are likely dead too (a restarted server).
                    conn.invalidate(exc)
                    self.store.engine.dispose()
                    raise Disconnected from exc
                raise
        if updated != 1:
            raise Conflict

    def _pg_params(
        self, instance_id: int, expected_version: int, values: dict[str, Any],
        rows: list[dict[str, Any]], receipt: dict[str, Any] | None,
    ) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {f"v_{c}": values[c] for c in STEP_COLUMNS}
        params["id"], params["expected"] = instance_id, expected_version
        for column in EVENT_COLUMNS:
            params[f"e_{column}"] = [r[column] for r in rows]
        if receipt is not None:
            params.update({f"r_{c}": receipt[c] for c in RECEIPT_COLUMNS})
        return (self._statement if receipt is None else self._statement_receipt), params


def sqlite_value(value: Any) -> Any:
    """Parameters as SQLAlchemy's SQLite types store them (DateTime as ISO text)."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    return value


def _sqlite_update(columns: tuple[str, ...]) -> str:
    sets = ", ".join(f"{c} = ?" for c in columns)
    return (f"UPDATE {INSTANCE.name} SET {sets}, lease_owner = NULL, lease_until = NULL "
            "WHERE id = ? AND version = ?")


def sqlite_insert(table: str, columns: tuple[str, ...]) -> str:
    return (f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})")


def _pg_statement(with_receipt: bool) -> str:
    sets = ", ".join(f"{c} = %(v_{c})s" for c in STEP_COLUMNS)
    arrays = ", ".join(f"%(e_{c})s::{_PG_ARRAY_TYPES.get(c, 'text')}[]" for c in EVENT_COLUMNS)
    receipt = ""
    if with_receipt:
        receipt = (f", r AS (INSERT INTO {RECEIPT.name} (instance_id, "
                   f"{', '.join(RECEIPT_COLUMNS)}) SELECT u.id, "
                   + ", ".join(f"%(r_{c})s" for c in RECEIPT_COLUMNS) + " FROM u)")
    # Events keep the order of the arrays (WITH ORDINALITY), so their ids follow the chain.
    return (
        f"WITH u AS (UPDATE {INSTANCE.name} SET {sets}, lease_owner = NULL, "
        "lease_until = NULL WHERE id = %(id)s AND version = %(expected)s RETURNING id), "
        f"e AS (INSERT INTO {STEP_EVENT.name} (instance_id, {', '.join(EVENT_COLUMNS)}) "
        f"SELECT u.id, {', '.join(f'x.{c}' for c in EVENT_COLUMNS)} FROM u CROSS JOIN "
        f"unnest({arrays}) WITH ORDINALITY AS x({', '.join(EVENT_COLUMNS)}, n) "
        f"ORDER BY x.n){receipt} SELECT count(*) FROM u"
    )
