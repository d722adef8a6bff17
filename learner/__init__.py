"""The learner: event log → dataset, variant paths, LightGBM, policy rewrite.

    from learner import import_log, cases, decisions, variants
    import_log(store, "receipt.xes.gz", "receipt_history")      # a historical log
    table = decisions(store, "prospect_journey", outcome="customer_order",
                      horizon=timedelta(days=14))              # one row per content decision
    for v in variants(store, "prospect_journey", outcome="customer_order"):
        print(v.cases, v.rate, v.p_value, v.label)
"""

from engine.store.steplog import UnknownOutcome
from learner._records import (
    ImportProblem,
    ImportProgress,
    ImportReport,
    LogAlreadyImported,
    LogImportError,
    LogRejected,
)
from learner.dataset import Case, DecisionTable, Event, cases, decisions
from learner.exporter import ExportReport, export_log
from learner.importer import import_log
from learner.variants import Variant, unobserved_cases, variants

__all__ = [
    "Case",
    "DecisionTable",
    "Event",
    "ExportReport",
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
    "export_log",
    "import_log",
    "unobserved_cases",
    "variants",
]

# The outcome model, off-policy evaluation (of a policy learned here or given), policy rewrite
# and drift (they import LightGBM).
from content_catalog.drift_alerts import DriftRecord, drift_records, open_alerts_on  # noqa: E402
from learner.drift import Alert, StreamAlert, detect, detect_stream, detect_table  # noqa: E402
from learner.drift_watch import DriftAction, review, watch  # noqa: E402
from learner.evaluation import Evaluation, HookEvaluation, evaluate, evaluate_from  # noqa: E402
from learner.model import OutcomeModel  # noqa: E402
from learner.online import HookRefresh, Refresh, Settings, outcome_count, refresh  # noqa: E402
from learner.ope import Estimate  # noqa: E402
from learner.rewrite import HookProposal, Proposal, apply, propose, propose_from  # noqa: E402

__all__ += [
    "Alert",
    "DriftAction",
    "DriftRecord",
    "Estimate",
    "Evaluation",
    "HookEvaluation",
    "HookProposal",
    "HookRefresh",
    "OutcomeModel",
    "Proposal",
    "Refresh",
    "Settings",
    "StreamAlert",
    "apply",
    "detect",
    "detect_stream",
    "detect_table",
    "drift_records",
    "evaluate",
    "evaluate_from",
    "open_alerts_on",
    "propose",
    "outcome_count",
    "propose_from",
    "refresh",
    "review",
    "watch",
]
