"""What a map counts as success: its declared outcomes and the indicators built on them.

One definition of each number. A map declares the outcome events it expects (what
`Engine.outcome()` records, e.g. `customer_order`) and which of them count as conversion;
and indicators such as "first sale within 14 days" (a distributor's first `sale` outcome
within P14D of enrolling). The funnel, the report, the demo, the leading indicators and the
learner read these instead of each picking its own outcome.

YAML (BPMN: the same JSON in `outcomes` and `indicators` properties of the process):

    outcomes:
      customer_order: {converts: true}
      distributor_enrolled: {converts: true}
      sale: {}
    indicators:
      first_sale_within_14_days: {first: sale, within: P14D}

A map that declares none keeps the old reading: the `sale` outcome converts, and the first
sale within 14 days is the indicator (`DEFAULT_MEASURES`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from engine.clock import parse_duration

_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
SALE = "sale"


@dataclass(frozen=True)
class Outcome:
    """One outcome event a map expects; `converts`: it counts as conversion."""

    name: str
    converts: bool = False


@dataclass(frozen=True)
class FirstWithin:
    """An indicator: the share of distributors whose first `first` outcome came within
    `within` (ISO 8601 duration) of their enrollment."""

    name: str
    first: str
    within: str

    @property
    def days(self) -> float:
        return parse_duration(self.within).total_seconds() / 86400


@dataclass(frozen=True)
class Measures:
    """A map's outcomes and indicators. `declared` is False for the defaults."""

    outcomes: tuple[Outcome, ...]
    indicators: tuple[FirstWithin, ...]
    declared: bool = True

    @property
    def converting(self) -> tuple[str, ...]:
        """The outcomes that count as conversion, in declared order."""
        return tuple(o.name for o in self.outcomes if o.converts)

    @property
    def first_sale(self) -> FirstWithin:
        """The first first-within indicator (the defaults' when none is declared)."""
        return self.indicators[0] if self.indicators else DEFAULT_MEASURES.indicators[0]

    def outcomes_json(self) -> str:
        return json.dumps({o.name: {"converts": True} if o.converts else {}
                           for o in self.outcomes})

    def indicators_json(self) -> str:
        return json.dumps({i.name: {"first": i.first, "within": i.within}
                           for i in self.indicators})


DEFAULT_MEASURES = Measures((Outcome(SALE, converts=True),),
                            (FirstWithin("first_sale_within_14_days", SALE, "P14D"),),
                            declared=False)


def measures_from(outcomes: Any, indicators: Any) -> tuple[Measures | None, list[str]]:
    """Measures from the `outcomes:` and `indicators:` mappings (None when neither is
    given), and the problems found (each a sentence naming the entry)."""
    if outcomes is None and indicators is None:
        return None, []
    problems: list[str] = []
    found: list[Outcome] = []
    if not isinstance(outcomes, dict | None):
        problems.append("`outcomes` must map outcome names to {converts: true|false}")
        outcomes = {}
    for name, spec in (outcomes or {}).items():
        if not isinstance(name, str) or not _ID.match(name):
            problems.append(f"outcome {name!r}: names start with a letter or _ and use only "
                            "letters, digits, _ . -")
            continue
        spec = {} if spec is None else spec
        if not isinstance(spec, dict) or set(spec) - {"converts"} or not isinstance(
                spec.get("converts", False), bool):
            problems.append(f"outcome {name!r}: write {{converts: true}} or {{}}")
            continue
        found.append(Outcome(name, bool(spec.get("converts", False))))
    if found and not any(o.converts for o in found):
        problems.append("no declared outcome converts: mark at least one `converts: true`")
    names = {o.name for o in found}
    declared: list[FirstWithin] = []
    if not isinstance(indicators, dict | None):
        problems.append("`indicators` must map names to {first: OUTCOME, within: DURATION}")
        indicators = {}
    for name, spec in (indicators or {}).items():
        if not isinstance(name, str) or not _ID.match(name):
            problems.append(f"indicator {name!r}: names start with a letter or _ and use "
                            "only letters, digits, _ . -")
            continue
        if not isinstance(spec, dict) or set(spec) != {"first", "within"} or not all(
                isinstance(v, str) for v in spec.values()):
            problems.append(f"indicator {name!r}: write {{first: OUTCOME, within: P14D}}")
            continue
        if names and spec["first"] not in names:
            problems.append(f"indicator {name!r}: {spec['first']!r} is not a declared outcome "
                            f"(declared: {', '.join(sorted(names))})")
            continue
        try:
            parse_duration(spec["within"])
        except ValueError as exc:
            problems.append(f"indicator {name!r}: within: {exc}")
            continue
        declared.append(FirstWithin(name, spec["first"], spec["within"]))
    return Measures(tuple(found) or DEFAULT_MEASURES.outcomes, tuple(declared)), problems


def measures_from_json(outcomes: str | None, indicators: str | None
                       ) -> tuple[Measures | None, list[str]]:
    """The same from the JSON texts of BPMN properties."""
    parsed: list[Any] = []
    problems: list[str] = []
    for key, text in (("outcomes", outcomes), ("indicators", indicators)):
        if text is None:
            parsed.append(None)
            continue
        try:
            parsed.append(json.loads(text))
        except ValueError:
            problems.append(f"the `{key}` property must be JSON")
            parsed.append(None)
    found, more = measures_from(*parsed)
    return found, problems + more
