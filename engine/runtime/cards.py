"""Action cards: what each of a distributor's prospects waits on them for, and what to use.

Built from indexed instance rows and the ranking stored when each step was entered — never by
deserializing a workflow. Steps with role `sponsor` go to the instance's sponsor instead.
Steps flagged stuck and follow-ups that are due or overdue come first.

The instance rows come from the plain SQL of `engine.store.plain` (`card_rows`: the one
cards query, with no SQLAlchemy here, so `nextmove cards` can run it on a read-only sqlite3
connection). `page_rows` pages them by keyset: instances in the order their cards came or
come due (`instance.card_due_at`: the moment a step was flagged stuck, else the next
follow-up; overdue ones first, then the upcoming ones, then those with none), ties by id,
and a page's cursor is the key of its last instance with a card. The next page starts after
that key, wherever cards were done or added meanwhile: no card is skipped or shown twice
because others changed, as an offset would (one that moves on comes back as its next
step's card).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.clock import as_utc
from engine.runtime.waiting import Waiting
from engine.store.plain import PlainReads, card_rows

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_EPOCH = datetime(1970, 1, 1)
StepsOf = Callable[[int], Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class Suggestion:
    """One content option on a card, as the policy ranked it."""

    option_id: str
    score: float
    probability: float
    top: bool = False  # the one the card leads with
    kind: str | None = None
    title: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class ActionCard:
    instance_id: int
    process_id: str
    prospect_id: str
    distributor_id: str
    role: str  # distributor | sponsor
    step_id: str
    step_name: str
    control: str  # guidance | required
    guidance: str | None
    basis: str | None
    hook: str | None
    asks: dict[str, Any] | None  # what completing the step records, e.g. {"interest": [...]}
    since: datetime
    follow_up_at: datetime | None  # the earliest timer watching this instance
    overdue: bool
    waiting_for: tuple[str, ...]  # prospect events that would also move it (video_played)
    content: tuple[Suggestion, ...]
    suggested_message: str | None
    policy_version: int | None
    propensity: float | None
    no_content: str | None = None  # why a hooked step's card carries no content

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["since"] = self.since.isoformat()
        out["follow_up_at"] = self.follow_up_at.isoformat() if self.follow_up_at else None
        out["content"] = [asdict(s) for s in self.content]
        out["waiting_for"] = list(self.waiting_for)
        return out


def render(body: str, context: Mapping[str, Any]) -> str:
    """Fill `{name}` placeholders from the context; unknown ones stay as written."""
    return _PLACEHOLDER.sub(lambda m: str(context.get(m.group(1), m.group(0))), body)


def _suggestions(wait: Waiting, catalog: Any) -> tuple[Suggestion, ...]:
    rec = wait.recommendation
    if not rec:
        return ()
    out = []
    for ranked in rec["ranked"]:
        option = _option(catalog, ranked["option_id"])
        out.append(Suggestion(
            ranked["option_id"], ranked["score"], ranked["probability"],
            top=ranked["option_id"] == rec["shown"],
            kind=getattr(option, "kind", None), title=getattr(option, "title", None),
            url=getattr(option, "url", None)))
    out.sort(key=lambda s: not s.top)  # the card leads with what the policy chose to show
    return tuple(out)


def _option(catalog: Any, option_id: str) -> Any:
    if catalog is None:
        return None
    try:
        return catalog.option(option_id)
    except KeyError:
        return None


def _message(wait: Waiting, catalog: Any, context: Mapping[str, Any]) -> str | None:
    """The body of the best-ranked message template offered for the step, filled in."""
    if catalog is None or not wait.recommendation:
        return None
    ids = [wait.recommendation["shown"]] + [r["option_id"] for r in
                                            wait.recommendation["ranked"]]
    for option_id in ids:
        option = _option(catalog, option_id)
        if option is not None and option.kind == "message_template" and option.body:
            return render(option.body, context)
    return None


def _asks(props: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = props.get("data")
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def cards_for(
    reads: PlainReads, distributor_id: str, now: datetime, steps_of: StepsOf,
    catalog: Any = None, limit: int = 500,
) -> list[ActionCard]:
    """The distributor's cards, due and overdue follow-ups first, then oldest first, read
    with the plain SQL of `engine.store.plain` (the one cards query: `Engine.cards` runs it
    on the store's connection, `nextmove cards` on a read-only sqlite3 one).

    `steps_of(definition_id)` gives step id → step metadata (guidance text, basis).
    """
    rows = card_rows(reads, distributor_id, limit)
    return sorted_cards(rows_cards(rows, distributor_id, now, steps_of, catalog), now)


def rows_cards(rows: list[dict[str, Any]], distributor_id: str, now: datetime,
               steps_of: StepsOf, catalog: Any = None) -> list[ActionCard]:
    """The cards of instance rows (`engine.store.plain.card_rows`), in the rows' order."""
    return [card for row in rows
            for card in _row_cards(row, distributor_id, now, steps_of, catalog)]


def sorted_cards(cards: list[ActionCard], now: datetime) -> list[ActionCard]:
    """Overdue first, then by follow-up (none last), how long they have waited, instance."""
    far = datetime.max.replace(tzinfo=as_utc(now).tzinfo)
    cards.sort(key=lambda c: (not c.overdue, c.follow_up_at or far, c.since, c.instance_id))
    return cards


# A page reads rows in batches that grow to this while the rows carry no card for the person
# (a sponsor's downline instances waiting on their own distributors, timers).
_MOST_ROWS = 1000


def page_rows(reads: PlainReads, distributor_id: str, size: int, after: str | None
              ) -> tuple[list[dict[str, Any]], str | None]:
    """The instance rows of a page of about `size` of the distributor's cards after the
    cursor `after`, in keyset order (the module docstring), and the next page's cursor
    (None: no card after them). Rows with no card for them are read past, in the same read,
    so a page is empty only when nothing is left, and a cursor is given only when a card
    follows. A page ends at an instance's last card, so it may hold a few more than `size`
    when one instance waits on several steps."""
    page: list[dict[str, Any]] = []
    cards = 0
    key = None if after is None else parse_cursor(after)
    batch = size + 1
    while True:
        rows = card_rows(reads, distributor_id, batch, key)
        for row in rows:
            mine = sum(_is_card_of(w, row, distributor_id) for w in _waits(row))
            if not mine:
                continue
            if cards >= size:  # a card follows the full page: it starts the next one
                return page, _cursor(page[-1])
            page.append(row)
            cards += mine
        if len(rows) < batch:
            return page, None
        key = (rows[-1]["card_due_at"], rows[-1]["id"])
        batch = min(2 * batch, _MOST_ROWS)


def _cursor(row: Mapping[Any, Any]) -> str:
    due = row["card_due_at"]
    if due is None:
        return f"n.{row['id']}"
    delta = due.replace(tzinfo=None) - _EPOCH
    return f"{(delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds}.{row['id']}"


def parse_cursor(cursor: str) -> tuple[datetime | None, int]:
    """The (next due, id) a page cursor stands for; ValueError if it is not one (digits
    only, and a time and an id a database can hold)."""
    due, _, last_id = cursor.partition(".")
    if not (last_id.isascii() and last_id.isdigit() and int(last_id) < 2**63 and (
            due == "n" or due.isascii() and due.removeprefix("-").isdigit())):
        raise ValueError(f"{cursor!r} is not a page cursor")
    if due == "n":
        return None, int(last_id)
    try:
        return _EPOCH + timedelta(microseconds=int(due)), int(last_id)
    except OverflowError:  # past year 9999 or before year 1
        raise ValueError(f"{cursor!r} is not a page cursor") from None


def card_owner(role: str | None, distributor_id: str, sponsor_id: str | None) -> str | None:
    """Whose card a person's step with `role` is: the instance's sponsor's for a sponsor
    step (None: the instance has no sponsor), else the instance's distributor's."""
    return sponsor_id if role == "sponsor" else distributor_id


def step_owner(header: Mapping[str, Any], step_id: str,
               steps: Mapping[str, Mapping[str, Any]],
               waiting_now: Callable[[], Iterable[Waiting]]) -> str | None:
    """Who may act on `step_id` of the instance whose row is `header` (scoped callers:
    `service.roles`): the step's card owner while it waits, else the instance's distributor
    (the step then answers "not waiting"). `steps` is the map's step metadata: only for a
    step the map gives to the sponsor is the waiting read, by `waiting_now`, from the
    database (a timer another process fired may have just made it wait), so a
    distributor's step costs no read."""
    distributor = str(header["distributor_id"])
    if steps.get(step_id, {}).get("properties", {}).get("role") != "sponsor":
        return distributor
    for wait in waiting_now():
        if wait.kind == "user" and wait.step_id == step_id:
            return card_owner(wait.role, distributor, header["sponsor_id"])
    return distributor


def _waits(row: Mapping[str, Any]) -> list[Waiting]:
    return [Waiting.from_dict(w) for w in json.loads(row["waiting"])]


def _is_card_of(wait: Waiting, row: Mapping[str, Any], distributor_id: str) -> bool:
    return wait.kind == "user" and card_owner(
        wait.role, row["distributor_id"], row["sponsor_id"]) == distributor_id


def _row_cards(
    row: Mapping[str, Any], distributor_id: str, now: datetime, steps_of: StepsOf,
    catalog: Any,
) -> list[ActionCard]:
    """The cards of one instance row that wait on `distributor_id`."""
    cards = []
    waits = _waits(row)
    context: dict[str, Any] | None = None  # parsed only when a message is filled in
    messages = tuple(w.message for w in waits if w.kind == "message" and w.message)
    step_info = steps_of(row["definition_id"])
    for wait in waits:
        if not _is_card_of(wait, row, distributor_id):
            continue
        role = wait.role or "distributor"
        props = step_info.get(wait.step_id, {}).get("properties", {})
        if context is None and (wait.recommendation and catalog is not None
                                or wait.hook and not wait.recommendation):
            context = json.loads(row["context"])
        rec = wait.recommendation or {}
        # Timers watching this step, or a timer the instance itself waits at.
        dues = [w.due_at for w in waits if w.due_at is not None
                and w.attached_to in (wait.step_id, None)]
        follow_up = min(dues) if dues else None
        overdue = wait.stuck_since is not None or (
            follow_up is not None and follow_up <= as_utc(now))
        cards.append(ActionCard(
            instance_id=row["id"], process_id=row["process_id"],
            prospect_id=row["prospect_id"], distributor_id=row["distributor_id"],
            role=role, step_id=wait.step_id, step_name=wait.name,
            control=wait.control or "guidance", guidance=props.get("card"),
            basis=props.get("basis"), hook=wait.hook, asks=_asks(props),
            since=as_utc(wait.since),
            follow_up_at=follow_up, overdue=overdue,
            waiting_for=messages, content=_suggestions(wait, catalog),
            suggested_message=_message(wait, catalog, context or {}),
            policy_version=rec.get("policy_version"), propensity=rec.get("propensity"),
            no_content=None if rec or not wait.hook else _why_no_content(
                wait.hook, catalog, context or {}),
        ))
    return cards


def _why_no_content(hook: str, catalog: Any, context: Mapping[str, Any]) -> str:
    """Why the card of a step with `hook` offers nothing (said on the card, so an empty card
    is not taken for a fault, and a mistyped market or locale shows)."""
    if catalog is None:
        return "no content catalog is in use (none is deployed, or the engine recommends none)"
    everywhere = catalog.options_for(hook)
    if not everywhere:
        return f"nothing in catalog {catalog.name!r} fills hook {hook!r}"
    market, locale = context.get("market"), context.get("locale")
    if not catalog.options_for(hook, locale=locale, market=market):
        markets = sorted({m for o in everywhere for m in o.markets})
        locales = sorted({o.locale for o in everywhere if o.locale})
        return (f"catalog {catalog.name!r} has no content for hook {hook!r} in market "
                f"{market or '(none given)'} with locale {locale or '(none given)'}; it has "
                f"some for markets {', '.join(markets) or 'any'} and locales "
                f"{', '.join(locales) or 'any'}")
    return (f"nothing was ranked for hook {hook!r} when the step was entered (content for it "
            "was deployed later); the next step's card will carry content")
