"""Compliance: evidence that nextmove guides independent contractors and does not control them.

    report = audit(["processes/lifevantage"], fail_on="medium")
    print(to_markdown(report))           # or to_json(report), to_sarif(report)
    exit_code = 1 if report.failed() else 0

    summary = trail_summary(store, process="prospect_journey")   # what contractors did
    check = verify_trail(store)                                   # was the record altered?

Static audit: a catalogue of control indicators (`RULES`: NM001 ...), each tied to the IRS
common-law factors and prong A of the ABC test, checked on the `ProcessMap` model so BPMN and
YAML maps are audited alike. A finding is acknowledged in the map by a step property
`compliance.<RULE>` holding the written justification; acknowledged findings are listed, marked,
and never fail the audit.

Runtime trail: per step, how often contractors followed, changed or skipped the guidance, and
the hash chains of the step log recomputed, naming any event edited, removed or moved. The
policy activation log has no chain of its own; `anchor_activations` / `check_activations`
give it one from outside the database.

Errors: `UnknownSeverity` (a NextmoveError and a ValueError) for a bad severity threshold.
"""

from compliance.audit import (
    ACK_PREFIX,
    AuditedMap,
    AuditReport,
    Finding,
    Note,
    RequiredStep,
    UnknownSeverity,
    audit,
    justifications,
)
from compliance.policy_chain import (
    ActivationAnchor,
    ActivationCheck,
    anchor_activations,
    check_activations,
)
from compliance.report import sarif_log, to_json, to_markdown, to_sarif
from compliance.rules import RULES, SEVERITIES, Rule
from compliance.trail import (
    StepTrail,
    Tampering,
    TrailSummary,
    TrailVerification,
    trail_summary,
    verify_trail,
)

__all__ = [
    "ACK_PREFIX",
    "RULES",
    "SEVERITIES",
    "ActivationAnchor",
    "ActivationCheck",
    "AuditReport",
    "AuditedMap",
    "Finding",
    "Note",
    "RequiredStep",
    "Rule",
    "StepTrail",
    "Tampering",
    "TrailSummary",
    "TrailVerification",
    "UnknownSeverity",
    "anchor_activations",
    "audit",
    "check_activations",
    "justifications",
    "sarif_log",
    "to_json",
    "to_markdown",
    "to_sarif",
    "trail_summary",
    "verify_trail",
]
