"""Leading indicators per distributor, and cohorts by enrollment week.

The reference customer watches, per new distributor: contacts added, content shared, and
meetings and calls per week; days to the first sale; and whether that sale came within 14 days.
Which logged events count as which activity is data, not code: an `Indicator` names the step
ids and/or hooks and the event kinds that count. `LIFEVANTAGE_INDICATORS` maps them onto the
LifeVantage journeys:

* contacts_added: `entered` at step `add_contact` (every prospect a distributor adds starts
  a journey there);
* content_shared: `completed`/`varied` at hooks `first_contact_message`, `intro_video`,
  `follow_up_message`, `nurture_message` (the steps whose card is a message or video to send);
* meetings_calls: `completed`/`varied` at steps `conversation` ("talk it through", a meeting
  or presentation) and `check_in` (the check-in call).

`parse_indicator` reads the same from text (the CLI's `--indicator`).

A distributor's enrollment is the start of their onboarding instance (process
`distributor_onboarding`, prospect id = the distributor), else their first instance. Rates are
per week observed: from enrollment to `as_of` (default: the newest event in the store), at
least one week. A first sale and its window are the map's declared first-sale indicator
(`analytics.measures`; by default the first outcome event named `sale` on any of their
instances, within 14 days). Everything is one SQL aggregate per question; cohort medians
use the database's percentiles.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from analytics._read_indicators import (
    cohort_rows,
    distributor_rows,
    newest_event_at,
    prospect_rows,
)
from analytics._sql import naive
from analytics.measures import conversion_process, first_sale_rule
from engine.clock import as_utc
from engine.errors import NextmoveError, UnknownHook, UnknownStep
from engine.store import DONE_KINDS, EVENT_KINDS, EventKind
from engine.store.database import Store
from engine.store.steplog import check_process, stored_steps_and_hooks

ONBOARDING = "distributor_onboarding"
WINDOW_DAYS = 14


class IndicatorSpecError(NextmoveError):
    """An indicator definition given as text does not parse."""


@dataclass(frozen=True)
class Indicator:
    """Which logged events count towards one activity indicator."""

    name: str
    steps: tuple[str, ...] = ()
    hooks: tuple[str, ...] = ()
    kinds: tuple[str, ...] = DONE_KINDS

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "steps": list(self.steps), "hooks": list(self.hooks),
                "kinds": list(self.kinds)}


LIFEVANTAGE_INDICATORS: tuple[Indicator, ...] = (
    Indicator("contacts_added", steps=("add_contact",), kinds=(EventKind.ENTERED,)),
    Indicator("content_shared", hooks=("first_contact_message", "intro_video",
                                       "follow_up_message", "nurture_message")),
    Indicator("meetings_calls", steps=("conversation", "check_in")),
)

_SPEC = re.compile(r"^\s*([A-Za-z_][\w]*)\s*=\s*([^@]+?)\s*(?:@\s*([\w+,\s]+))?\s*$")


def parse_indicator(text: str) -> Indicator:
    """`name=item,item[@kind+kind]`: items are step ids or `hook:NAME`; kinds default to
    completed+varied. E.g. `contacts_added=add_contact@entered`,
    `content_shared=hook:intro_video,hook:follow_up_message`."""
    found = _SPEC.match(text)
    if not found:
        raise IndicatorSpecError(
            f"indicator {text!r} is not NAME=ITEM[,ITEM...][@KIND[+KIND...]] (items: step ids "
            "or hook:NAME), e.g. 'contacts_added=add_contact@entered'")
    name, items, kinds_text = found.groups()
    steps, hooks = [], []
    for item in (i.strip() for i in items.split(",")):
        if not item:
            continue
        if item.startswith("hook:"):
            hooks.append(item[5:].strip())
        else:
            steps.append(item)
    kinds = tuple(k.strip() for k in re.split(r"[+,]", kinds_text) if k.strip()) \
        if kinds_text else DONE_KINDS
    bad = [k for k in kinds if k not in EVENT_KINDS]
    if bad:
        raise IndicatorSpecError(f"indicator {name!r}: unknown event kind(s) {', '.join(bad)}; "
                                 f"one of {', '.join(EVENT_KINDS)}")
    if not steps and not hooks:
        raise IndicatorSpecError(f"indicator {name!r} names no step and no hook")
    return Indicator(name, tuple(steps), tuple(hooks), kinds)


def check_items(store: Store, definitions: Sequence[Indicator]) -> None:
    """Raise UnknownStep / UnknownHook for a step or hook of a definition that no stored map
    (of any process or version, imported logs included) has: mistyped, it would count zero.
    LifeVantage's own definitions (the defaults) are not checked: on another brand's
    database they count zero, as they should."""
    given = [d for d in definitions if d not in LIFEVANTAGE_INDICATORS]
    if not given:
        return
    steps, hooks = stored_steps_and_hooks(store)
    for d in given:
        for step in d.steps:
            if step not in steps:
                raise UnknownStep(step, steps)
        for hook in d.hooks:
            if hook not in hooks:
                raise UnknownHook(hook, hooks)


def with_overrides(overrides: Sequence[Indicator],
                   base: Sequence[Indicator] = LIFEVANTAGE_INDICATORS) -> tuple[Indicator, ...]:
    """`base` with same-named indicators replaced and new ones appended."""
    by_name = {i.name: i for i in base}
    for item in overrides:
        by_name[item.name] = item
    return tuple(by_name.values())


@dataclass(frozen=True)
class DistributorIndicators:
    distributor_id: str
    enrolled_at: datetime
    weeks: float  # observed, from enrollment to as_of (at least 1)
    counts: dict[str, int]  # indicator name -> events
    days_to_first_sale: float | None
    first_sale_within: bool | None  # None: not observed for the whole window yet
    prospects: int = 0  # their journeys (the process that declares its outcomes)
    converted: int = 0  # of them, reached an outcome the map declares as converting

    def per_week(self, name: str) -> float:
        return self.counts.get(name, 0) / self.weeks

    def to_dict(self) -> dict[str, Any]:
        return {"distributor_id": self.distributor_id,
                "enrolled_at": self.enrolled_at.isoformat(), "weeks": self.weeks,
                "counts": dict(self.counts),
                "per_week": {k: self.per_week(k) for k in self.counts},
                "days_to_first_sale": self.days_to_first_sale,
                "first_sale_within": self.first_sale_within,
                "prospects": self.prospects, "converted": self.converted}


@dataclass(frozen=True)
class Indicators:
    as_of: datetime
    window_days: int
    definitions: tuple[Indicator, ...]
    distributors: tuple[DistributorIndicators, ...]  # by enrollment, then id
    journey: str | None = None  # whose conversion `prospects`/`converted` count
    outcomes: tuple[str, ...] = ()  # what converts there

    @property
    def observed(self) -> int:
        """Distributors enrolled at least `window_days` before `as_of`."""
        return sum(1 for d in self.distributors if d.first_sale_within is not None)

    @property
    def first_sale_share(self) -> float:
        hits = sum(1 for d in self.distributors if d.first_sale_within)
        return hits / self.observed if self.observed else 0.0

    @property
    def prospects(self) -> int:
        return sum(d.prospects for d in self.distributors)

    @property
    def converted(self) -> int:
        return sum(d.converted for d in self.distributors)

    @property
    def outcome_label(self) -> str:
        return " or ".join(self.outcomes)

    @property
    def conversion(self) -> float:
        """Converted prospects over all prospects, as the funnel counts them."""
        return self.converted / self.prospects if self.prospects else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": as_utc(self.as_of).isoformat(), "window_days": self.window_days,
                "definitions": [d.to_dict() for d in self.definitions],
                "observed": self.observed, "first_sale_share": self.first_sale_share,
                "journey": self.journey, "outcome": "+".join(self.outcomes),
                "prospects": self.prospects, "converted": self.converted,
                "conversion": self.conversion,
                "distributors": [d.to_dict() for d in self.distributors]}


@dataclass(frozen=True)
class Cohort:
    week: date  # Monday of the enrollment week
    distributors: int
    per_week: dict[str, float]  # indicator -> mean events per distributor-week
    observed: int  # enrolled at least window_days before as_of
    first_sale_within: int  # of the observed
    median_days_to_first_sale: float | None  # among those with a sale

    @property
    def first_sale_share(self) -> float:
        return self.first_sale_within / self.observed if self.observed else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "week": self.week.isoformat(),
                "first_sale_share": self.first_sale_share}


@dataclass(frozen=True)
class Cohorts:
    as_of: datetime
    window_days: int
    definitions: tuple[Indicator, ...]
    weeks: tuple[Cohort, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": as_utc(self.as_of).isoformat(), "window_days": self.window_days,
                "definitions": [d.to_dict() for d in self.definitions],
                "weeks": [w.to_dict() for w in self.weeks]}


def indicators(
    store: Store, *, definitions: Sequence[Indicator] = LIFEVANTAGE_INDICATORS,
    as_of: datetime | None = None, onboarding: str = ONBOARDING,
    window_days: int | None = None, process_id: str | None = None,
    people: Collection[str] | None = None,
) -> Indicators:
    """Every distributor's leading indicators, as of `as_of` (default: the newest event).

    `process_id` keeps the distributors with an instance of that process (of `onboarding`:
    those it enrolled) and counts their events on it; their first sale counts on whichever
    process it was recorded (enrollment still comes from `onboarding`); `people` keeps those
    distributors only (`analytics.people`). A
    `process_id` never deployed or imported raises DefinitionNotFound, a step or hook of a
    definition given that no stored map has UnknownStep / UnknownHook."""
    if process_id is not None:
        check_process(store, process_id)
    check_items(store, definitions)
    moment = _as_of(store, as_of)
    sale, window_days = _first_sale(store, process_id, window_days)
    rows = distributor_rows(store, definitions, moment, onboarding, window_days, process_id,
                            (sale,), people)
    journey = conversion_process(store)
    prospects = (prospect_rows(store, journey[0], journey[1], moment, people)
                 if journey else {})
    out = []
    for r in rows:
        counts = {d.name: int(r[3 + n]) for n, d in enumerate(definitions)}
        days, within = r[3 + len(definitions)], r[4 + len(definitions)]
        out.append(DistributorIndicators(
            r[0], as_utc(r[1]), round(float(r[2]), 6), counts,
            None if days is None else round(float(days), 6),
            None if within is None else bool(within), *prospects.get(r[0], (0, 0))))
    return Indicators(as_utc(moment), window_days, tuple(definitions), tuple(out),
                      journey[0] if journey else None, journey[1] if journey else ())


def cohorts(
    store: Store, *, definitions: Sequence[Indicator] = LIFEVANTAGE_INDICATORS,
    as_of: datetime | None = None, onboarding: str = ONBOARDING,
    window_days: int | None = None, process_id: str | None = None,
    people: Collection[str] | None = None,
) -> Cohorts:
    """Distributors (of `people`, when given) grouped by the week they enrolled (weeks start
    on Monday): how many, their mean indicator rates, and how many of those observed for the
    whole window made a first sale within it. A `process_id` never deployed or imported
    raises DefinitionNotFound; definitions are checked as `indicators` checks them."""
    if process_id is not None:
        check_process(store, process_id)
    check_items(store, definitions)
    moment = _as_of(store, as_of)
    sale, window_days = _first_sale(store, process_id, window_days)
    rows = cohort_rows(store, definitions, moment, onboarding, window_days, process_id,
                       (sale,), people)
    k = len(definitions)
    weeks = tuple(
        Cohort(_date(r[0]), int(r[1]),
               {d.name: round(float(r[2 + n] or 0.0), 6) for n, d in enumerate(definitions)},
               int(r[2 + k]), int(r[3 + k]),
               None if r[4 + k] is None else round(float(r[4 + k]), 6))
        for r in rows)
    return Cohorts(as_utc(moment), window_days, tuple(definitions), weeks)


def _first_sale(store: Store, process_id: str | None,
                window_days: int | None) -> tuple[str, int]:
    """The declared first-sale indicator's outcome and window (`analytics.measures`);
    `window_days` overrides the window."""
    rule = first_sale_rule(store, process_id)
    return rule.first, window_days if window_days is not None else round(rule.days)


def _as_of(store: Store, as_of: datetime | None) -> datetime:
    if as_of is not None:
        return naive(as_of)
    newest = newest_event_at(store)
    return naive(newest) if newest is not None else datetime(1970, 1, 1)


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])

