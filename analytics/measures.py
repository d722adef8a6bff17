"""One definition of each number: what converts and what "first sale within 14 days" means,
as the map declares them (`engine.definitions.outcomes`).

    m = analytics.measures(store, "prospect_journey")
    m.converting        # ("customer_order", "distributor_enrolled")
    m.first_sale        # FirstWithin("first_sale_within_14_days", "sale", "P14D")

A process that declares nothing keeps the old reading (`DEFAULT_MEASURES`: the `sale` outcome
converts; the first sale within 14 days).
"""

from __future__ import annotations

from analytics._read_definitions import declared_measures, declaring_process
from engine.definitions.outcomes import DEFAULT_MEASURES, FirstWithin, Measures
from engine.store.database import Store

__all__ = ["DEFAULT_MEASURES", "FirstWithin", "Measures", "conversion_process",
           "first_sale_rule", "measures"]


def measures(store: Store, process_id: str) -> Measures:
    """The outcomes and indicators `process_id`'s newest version declares, else the
    defaults."""
    return declared_measures(store, process_id) or DEFAULT_MEASURES


def first_sale_rule(store: Store, process_id: str | None = None) -> FirstWithin:
    """The first-sale indicator: `process_id`'s, else the first declared by any process,
    else the default (the first `sale` within P14D)."""
    found = declared_measures(store, process_id) if process_id else None
    found = found or declared_measures(store)
    return (found or DEFAULT_MEASURES).first_sale


def conversion_process(store: Store) -> tuple[str, tuple[str, ...]] | None:
    """The first process (by id) that declares its outcomes, with those that convert: the
    journey whose conversion the leading indicators report per distributor."""
    found = declaring_process(store)
    return None if found is None else (found[0], found[1].converting)
