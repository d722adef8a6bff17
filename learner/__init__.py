"""The learner: event log → dataset, variant paths, LightGBM, policy rewrite.

    from learner import import_log, cases, decisions, variants
    import_log(store, "receipt.xes.gz", "receipt_history")      # a historical log
    table = decisions(store, "prospect_journey", outcome="customer_order",
                      horizon=timedelta(days=14))              # one row per content decision
    for v in variants(store, "prospect_journey", outcome="customer_order"):
        print(v.cases, v.rate, v.p_value, v.label)
"""

from learner._log import UnknownOutcome
from learner._records import (
    ImportProblem,
    ImportProgress,
    ImportReport,
    LogAlreadyImported,
    LogImportError,
    LogRejected,
)
from learner.dataset import Case, DecisionTable, Event, cases, decisions
from learner.importer import import_log
from learner.variants import Variant, variants

__all__ = [
    "Case",
    "DecisionTable",
    "Event",
    "ImportProblem",
    "ImportProgress",
    "ImportReport",
    "LogAlreadyImported",
    "LogImportError",
    "LogRejected",
    "UnknownOutcome",
    "Variant",
    "cases",
    "decisions",
    "import_log",
    "variants",
]
