"""How the commands open the database: through `nextmove.open_engine`, the one way in.

`engine_for` gives a ready engine; `open_store` is for commands that read or write the
database without running instances (analytics, learning, policies, audits) and closes it when
they are done. Both upgrade a database made by an older nextmove, with a progress bar.

Both create a database that is not there, except for the commands in `READ_ONLY`: those stop
with "no database at PATH" (not-found, exit 4) on an SQLite path that does not exist, so a
mistyped --db is not answered with a new empty database, zeros and "intact".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING

from commands._options import instant
from commands._output import err

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from engine import Engine, Store


# The commands that only read, as typed after `nextmove`; every other command may write, and
# creates the database it names. (`drift` writes only with --act or --ack, which need a log.)
READ_ONLY = frozenset({
    "audit maps", "audit review", "cards", "cohorts", "drift", "evaluate", "export-log",
    "funnel", "indicators", "list", "policy history", "recommend", "report", "show",
    "stuck", "survival", "token list", "variants"})


def running_command() -> str:
    """The command being run, as typed after `nextmove` ("funnel", "audit maps"); "" outside
    a command (nextmove used as a library)."""
    try:  # typer 0.2x runs on its own copy of click, whose context stack this is
        from typer._click.globals import get_current_context
    except ImportError:  # older typer: click itself
        from click import get_current_context  # type: ignore[no-redef]

    names = []
    ctx = get_current_context(silent=True)
    while ctx is not None and ctx.parent is not None:  # the root is the program itself
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def _create() -> bool:
    """Whether opening may create the database: not for a command that only reads."""
    return running_command() not in READ_ONLY


def engine_for(db: str | None, allow_scripts: bool = False, now: str | None = None,
               recommend: bool = True, recorded: bool = True) -> Engine:
    """An engine on `db` whose clock follows the one rule for now (`now_of`): `now` (ISO
    8601) if given, else the simulated clock a simulation recorded in the database (so a
    `tick` or `complete` on a demo database happens when the demo's log ends, not months
    later), else the system clock; `recorded=False` (a long-running worker) skips the
    recorded clock. Recommends from the stored catalog unless `recommend` is False."""
    import nextmove
    from engine import ManualClock

    clock: ManualClock | RecordedClock | None = None
    if now:
        clock = ManualClock(instant(now, "--now"))
    elif recorded:
        clock = RecordedClock()
    engine = nextmove.open_engine(db, clock=clock, allow_scripts=allow_scripts,
                                  recommend=recommend, progress=UpgradeBar(),
                                  create=_create())
    _opened.set((*_opened.get(), engine.store))
    if isinstance(clock, RecordedClock):
        clock.read(engine.store)
    return engine


class RecordedClock:
    """The simulated clock recorded in the database (read once, when the engine opens it),
    else the system clock."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def read(self, store: Store) -> None:
        from engine.store.recorded_clock import simulated_clock

        self.at = simulated_clock(store)

    def now(self) -> datetime:
        from engine import SystemClock

        return self.at if self.at is not None else SystemClock().now()


def now_of(store: Store, now: str | None, option: str = "--now") -> datetime:
    """"Now" for a command reading `store`, one rule everywhere: `now` (ISO 8601) if given,
    else the simulated clock a simulation recorded in the database, else the real clock."""
    from engine import SystemClock
    from engine.store.recorded_clock import simulated_clock

    if now:
        return instant(now, option)
    return simulated_clock(store) or SystemClock().now()


_opened: ContextVar[tuple[Store, ...]] = ContextVar("nextmove_opened", default=())


def close_engines() -> None:
    """Dispose of the stores `engine_for` opened during this command (its connections)."""
    for store in _opened.get():
        store.dispose()
    _opened.set(())


@contextmanager
def open_store(db: str | None, durable: bool = True) -> Iterator[Store]:
    """The database at `db`, disposed on the way out (no PostgreSQL pool is left open);
    `durable=False`: the opt-in for throwaway databases (see `nextmove.open_store`)."""
    import nextmove

    store = nextmove.open_store(db, durable=durable, progress=UpgradeBar(), create=_create())
    try:
        yield store
    finally:
        store.dispose()


class UpgradeBar:
    """A progress bar on stderr while an older database is upgraded (nothing otherwise: the
    bar, and rich's progress module, are made when an upgrade first reports)."""

    def __init__(self) -> None:
        self._bar: Progress | None = None
        self.tasks: dict[str, TaskID] = {}

    @property
    def bar(self) -> Progress:
        if self._bar is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(TextColumn("upgrading the database: {task.description}"),
                                 BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=err, transient=True)
        return self._bar

    def __call__(self, what: str, done: int, total: int) -> None:
        if what not in self.tasks:
            self.bar.start()
            self.tasks[what] = self.bar.add_task(what, total=total)
        self.bar.update(self.tasks[what], completed=done, total=total)
        if done >= total:
            self.bar.stop()
