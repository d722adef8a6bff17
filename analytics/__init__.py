"""What the step log says: funnels, waiting times, first sales, content use.

Counts are SQL aggregates in the database; waiting times pair each arrival at a step with
what happened next there using a window function, and only those durations reach Python.
"""

from analytics.log import (
    ContentUse,
    FirstSales,
    FunnelStep,
    StepWait,
    content_use,
    first_sales,
    funnel,
    waits,
)

__all__ = [
    "ContentUse",
    "FirstSales",
    "FunnelStep",
    "StepWait",
    "content_use",
    "first_sales",
    "funnel",
    "waits",
]
