"""Time to first sale as a survival view: Kaplan–Meier curves with 95% confidence bands.

    s = analytics.survival(store)            # as of the newest event; 14-day window
    s.overall.share_within                   # share with a first sale by day 14 (KM)
    for c in s.cohorts: c.label, c.share_within, c.lower, c.upper   # by enrollment week
    for v in s.variants: ...                 # by the content first shown at `s.hook`
    s.variant_test.p                         # log-rank test between the variants

A distributor's clock starts at enrollment (as `analytics.indicators` counts it) and stops at
their first `sale` outcome: that is the event. Distributors without one are censored when the
observation ends: at `as_of` for those still inside their window (they may yet sell: the
plain share "sold within 14 days" has to leave them out, the curve keeps what they tell so
far), at the window's end for the others. The variant is the content their onboarding
instance was first shown at `hook` (default: the hook of the onboarding step whose declared
outcome is `first_sale`): the one they were given, whether or not they used it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from analytics._km import LogRank, Step, kaplan_meier, logrank, median_time, survival_at
from analytics._read_indicators import newest_event_at
from analytics._read_survival import distributor_rows, latest_steps, step_hooks, variant_hook
from analytics._sql import naive
from analytics.measures import first_sale_rule
from engine.clock import as_utc
from engine.errors import UnknownHook
from engine.store.database import Store

__all__ = ["Curve", "Survival", "survival"]

ONBOARDING = "distributor_onboarding"
SALE = "sale"
WINDOW_DAYS = 14
NO_VARIANT = "(none shown)"


@dataclass(frozen=True)
class Curve:
    """One group's Kaplan–Meier curve, as the share with a first sale by each day."""

    label: str
    subjects: int
    events: int  # first sales inside the window
    censored: int
    still_inside: int  # censored while still inside their window
    steps: tuple[Step, ...]
    window_days: int

    def _at_window(self) -> Step | None:
        return survival_at(self.steps, float(self.window_days))

    @property
    def share_within(self) -> float:
        """Estimated share with a first sale by the end of the window (1 − S)."""
        step = self._at_window()
        return 0.0 if step is None else 1.0 - step.survival

    @property
    def band(self) -> tuple[float, float]:
        """95% interval of `share_within`."""
        step = self._at_window()
        return (0.0, 0.0) if step is None else (1.0 - step.upper, 1.0 - step.lower)

    @property
    def median_days(self) -> float | None:
        return median_time(self.steps)

    def to_dict(self) -> dict[str, Any]:
        low, high = self.band
        return {"label": self.label, "subjects": self.subjects, "events": self.events,
                "censored": self.censored, "still_inside_window": self.still_inside,
                "share_within": self.share_within, "lower": low, "upper": high,
                "median_days": self.median_days,
                "points": [{"days": s.time, "at_risk": s.at_risk, "events": s.events,
                            "censored": s.censored, "share": 1.0 - s.survival,
                            "lower": 1.0 - s.upper, "upper": 1.0 - s.lower}
                           for s in self.steps]}


def _test_dict(test: LogRank | None, labels: Sequence[str]) -> dict[str, Any] | None:
    if test is None:
        return None
    return {"test": "log-rank", "chi2": test.chi2, "df": test.df, "p": test.p,
            "groups": [{"label": label, "observed": o, "expected": e}
                       for label, o, e in zip(labels, test.observed, test.expected,
                                              strict=True)]}


@dataclass(frozen=True)
class Survival:
    as_of: datetime
    window_days: int
    hook: str | None
    overall: Curve
    cohorts: tuple[Curve, ...]  # by enrollment week (Monday), oldest first
    variants: tuple[Curve, ...]  # by content first shown at `hook`, most distributors first
    variant_test: LogRank | None
    cohort_test: LogRank | None
    # per distributor: id, enrolled (naive UTC), days, sold, still inside, variant
    subjects: tuple[tuple[str, datetime, float, bool, bool, str | None], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": as_utc(self.as_of).isoformat(), "window_days": self.window_days,
                "hook": self.hook, "overall": self.overall.to_dict(),
                "cohorts": [c.to_dict() for c in self.cohorts],
                "variants": [v.to_dict() for v in self.variants],
                "variant_test": _test_dict(self.variant_test, [v.label for v in self.variants]),
                "cohort_test": _test_dict(self.cohort_test, [c.label for c in self.cohorts])}


Subject = tuple[float, bool, bool]  # days, sold (the event), censored while still inside


def _subject(enrolled: datetime, sale: datetime | None, as_of: datetime,
             window: float) -> Subject:
    observed = (as_of - enrolled) / timedelta(days=1)
    if sale is not None and sale >= enrolled:
        days = (sale - enrolled) / timedelta(days=1)
        if days <= window:
            return days, True, False
    if observed < window:
        return observed, False, True
    return window, False, False


def _curve(label: str, subjects: Sequence[Subject], window: int) -> Curve:
    steps = kaplan_meier([s[0] for s in subjects], [s[1] for s in subjects])
    events = sum(1 for s in subjects if s[1])
    return Curve(label, len(subjects), events, len(subjects) - events,
                 sum(1 for s in subjects if s[2]), tuple(steps), window)


def _groups(labelled: Sequence[tuple[str, Subject]], window: int,
            order: str) -> tuple[tuple[Curve, ...], LogRank | None]:
    by: dict[str, list[Subject]] = {}
    for label, subject in labelled:
        by.setdefault(label, []).append(subject)
    labels = sorted(by) if order == "label" else sorted(by, key=lambda k: (-len(by[k]), k))
    curves = tuple(_curve(label, by[label], window) for label in labels)
    test = logrank([([s[0] for s in by[k]], [s[1] for s in by[k]]) for k in labels])
    return curves, test


def _monday(moment: datetime) -> date:
    day = moment.date()
    return day - timedelta(days=day.weekday())


def survival(store: Store, *, as_of: datetime | None = None, window_days: int | None = None,
             hook: str | None = None, onboarding: str = ONBOARDING,
             sale: str | None = None, people: Collection[str] | None = None) -> Survival:
    """Time from enrollment to the first `sale`, censored at `as_of` (default: the newest
    event) or at `window_days`; by enrollment week and by the content first shown at `hook`
    (default: the onboarding step whose declared outcome is `first_sale`; a hook the
    onboarding map does not have raises UnknownHook). `sale` and
    `window_days` default to the map's declared first-sale indicator (`analytics.measures`,
    the same one `indicators` counts), else the first `sale` within 14 days. `people` keeps
    those distributors only (`analytics.people`)."""
    rule = first_sale_rule(store)
    sale = sale if sale is not None else rule.first
    window_days = window_days if window_days is not None else round(rule.days)
    if as_of is None:
        newest = newest_event_at(store)
        moment = naive(newest) if newest is not None else datetime(1970, 1, 1)
    else:
        moment = naive(as_of)
    with store.read() as conn:
        steps = latest_steps(conn, onboarding)
        if hook is not None and hook not in (known := step_hooks(steps)):
            # a mistyped one would group nobody by content
            raise UnknownHook(hook, known, f" in process {onboarding!r}")
        chosen = hook if hook is not None else variant_hook(steps, "first_sale")
        rows = distributor_rows(conn, store.dialect, as_of=moment, onboarding=onboarding,
                                sale=sale, hook=chosen)
    if people is not None:
        rows = [r for r in rows if r[0] in people]
    window = float(window_days)
    subjects = [(d, enrolled, variant, _subject(enrolled, first, moment, window))
                for d, enrolled, first, variant in rows]
    overall = _curve("all", [s[3] for s in subjects], window_days)
    cohorts, cohort_test = _groups(
        [(_monday(enrolled).isoformat(), s) for _, enrolled, _, s in subjects], window_days,
        "label")
    variants: tuple[Curve, ...] = ()
    variant_test = None
    if chosen is not None:
        variants, variant_test = _groups(
            [(variant or NO_VARIANT, s) for _, _, variant, s in subjects], window_days, "size")
    return Survival(as_utc(moment), window_days, chosen, overall, cohorts, variants,
                    variant_test, cohort_test,
                    tuple((d, enrolled, *s, variant) for d, enrolled, variant, s in subjects))
