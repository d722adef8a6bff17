"""What the step log says: funnels, stuck instances, leading indicators, cohorts.

Everything is computed by SQL aggregates in the database (percentiles too: PostgreSQL's
`percentile_cont`, a window-function rank on SQLite), so only aggregated rows reach Python and
the figures stay fast at a million instances. Results are frozen dataclasses with `to_dict()`.

    import analytics
    m = analytics.measures(store, "prospect_journey")    # what the map declares converts
    f = analytics.funnel(store, "prospect_journey", since=..., distributor=..., market="US")
                                                          # Funnel: .steps, per step counts,
    for step in f: step.entered, step.median_hours, step.conversion   # times and conversion
    s = analytics.stuck(store, "prospect_journey", now)   # Stuck: .groups by step × distributor
    s = analytics.stuck(store, "prospect_journey", now, older_than=timedelta(days=3))
    i = analytics.indicators(store)                       # Indicators: .distributors, .summary
    c = analytics.cohorts(store)                          # Cohorts: .weeks by enrollment week
    v = analytics.survival(store)                         # Survival: time to first sale (KM)
    who = analytics.people(store, sponsor="d0001")        # a sponsor and their downline
    f = analytics.funnel(store, "prospect_journey", people=who.members)   # every view takes
                                                          # people=, for per-person figures

Indicator definitions (which steps/hooks count as "contacts added", "content shared",
"meetings and calls") are data: `LIFEVANTAGE_INDICATORS`, overridable per call or with
`parse_indicator("name=step,hook:name@kind+kind")`.

The older summaries of `analytics.log` (waits, first_sales, content_use) stay available.
"""

from analytics._sql import Filters, UnknownOutcome
from analytics.chart import funnel_chart
from analytics.funnel import DEFAULT_OUTCOME, Funnel, FunnelStep, funnel
from analytics.indicators import (
    LIFEVANTAGE_INDICATORS,
    Cohort,
    Cohorts,
    DistributorIndicators,
    Indicator,
    Indicators,
    IndicatorSpecError,
    cohorts,
    indicators,
    parse_indicator,
    with_overrides,
)
from analytics.log import (
    ContentUse,
    FirstSales,
    StepWait,
    content_use,
    first_sales,
    waits,
)
from analytics.measures import DEFAULT_MEASURES, FirstWithin, Measures, first_sale_rule, measures
from analytics.people import People, people
from analytics.report import ReportData, write_report
from analytics.stuck import Stuck, StuckGroup, Waiting, stuck
from analytics.survival import Curve, Survival, survival
from analytics.svg import Heat, render_map

__all__ = [
    "DEFAULT_MEASURES",
    "DEFAULT_OUTCOME",
    "LIFEVANTAGE_INDICATORS",
    "Cohort",
    "Cohorts",
    "ContentUse",
    "Curve",
    "DistributorIndicators",
    "Filters",
    "FirstSales",
    "FirstWithin",
    "Funnel",
    "FunnelStep",
    "Heat",
    "Indicator",
    "IndicatorSpecError",
    "Indicators",
    "Measures",
    "People",
    "ReportData",
    "StepWait",
    "Stuck",
    "StuckGroup",
    "Survival",
    "UnknownOutcome",
    "Waiting",
    "cohorts",
    "content_use",
    "first_sale_rule",
    "first_sales",
    "funnel",
    "funnel_chart",
    "indicators",
    "measures",
    "parse_indicator",
    "people",
    "render_map",
    "stuck",
    "survival",
    "waits",
    "with_overrides",
    "write_report",
]
