"""Step visits, recorded as they happen: what the funnel and `stuck` read without pairing
events after the fact.

A visit to a step begins with an `entered` event there (a person's step or a wait becoming
active) and ends with the next closing event at that step. A closing event with no `entered`
one before it at its step (start and end events, a boundary timer, every event of an
imported log) is a visit of its own, which began at the instance's previous event — the way
process-mining tools measure time between completions — or, for its first event, took no
time. `outcome` events are business results, not steps: they neither open nor close visits.

Every closing event carries what its visit was: `paired` (an `entered` event opened it) and
`visit_ms` (how long it took). `Visits` is the running state that decides both — per step,
the open visit's start, and the time of the instance's last event — and the engine keeps it
on the instance row, so a step knows its visits without reading the log. The importer and the
schema migration replay logs through the same class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engine.store.kinds import VISIT_KINDS, EventKind

_MS = timedelta(milliseconds=1)


@dataclass
class Visits:
    """One instance's visit state. Times are naive UTC, as the store keeps them."""

    open: dict[str, datetime] = field(default_factory=dict)  # step id -> its `entered` time
    last: datetime | None = None  # the instance's last event of VISIT_KINDS

    def record(self, step_id: str, kind: str, at: datetime) -> tuple[int | None, bool | None]:
        """Account for the next event; for a closing event, (visit_ms, paired), else
        (None, None)."""
        if kind not in VISIT_KINDS:
            return None, None
        previous, self.last = self.last, at
        if kind == EventKind.ENTERED:
            self.open[step_id] = at
            return None, None
        opened = self.open.pop(step_id, None)
        began = opened if opened is not None else previous if previous is not None else at
        return round((at - began) / _MS), opened is not None

    def copy(self) -> Visits:
        return Visits(dict(self.open), self.last)

    def dump(self) -> str:
        return json.dumps({"open": {k: v.isoformat() for k, v in self.open.items()},
                           "last": self.last.isoformat() if self.last else None})

    @classmethod
    def load(cls, doc: str | None) -> Visits:
        found = json.loads(doc) if doc else {}
        last = found.get("last")
        return cls({k: datetime.fromisoformat(v) for k, v in found.get("open", {}).items()},
                   datetime.fromisoformat(last) if last else None)
