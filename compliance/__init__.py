"""Compliance: evidence that nextmove guides independent contractors and does not control them.

    report = audit(["processes/lifevantage"], fail_on="medium")
    print(to_markdown(report))           # or to_json(report), to_sarif(report)
    exit_code = 1 if report.failed() else 0

    summary = trail_summary(store, process="prospect_journey")   # what contractors did
    check = verify_trail(store, anchor=kept)                      # was the record altered?

Static audit: a catalogue of control indicators (`RULES`: NM001 ...), each naming the factors
it evidences and citing its `SOURCES` (Rev. Rul. 87-41, the IRS's three categories, IRC §3508,
the ABC test, the DOL's economic-reality test; docs/compliance.md explains each rule), checked
on the `ProcessMap` model so BPMN and YAML maps are audited alike. A finding is acknowledged
in the map by a step property `compliance.<RULE>` holding the written justification;
acknowledged findings are listed, marked, and never fail the audit.

Sign-offs (`sign_off`, `signoffs`): a reviewer accepts a finding for one version of its map,
outside the map; a changed map voids it. They are hash-chained like the trails below.

Runtime trail: per step, how often contractors followed, changed or skipped the guidance, and
the hash chains recomputed — each instance's step log (the cards shown, with propensity and
policy version, and what contractors chose) and the policy log (every version saved,
activated or rolled back to, committing to each policy document's hash) — naming any record
edited, removed or moved. `TrailAnchor` (in each verification's JSON: the policy log's
`PolicyAnchor` and the step log's `StepAnchor`) is what a reviewer keeps outside the database
to catch a log rewritten with fresh hashes, an instance deleted or its tail cut off;
`read_trail_anchor` reads it back (older anchors hold the policy log's head only).

Errors (NextmoveError and ValueError): `UnknownSeverity` for a bad severity threshold,
`BadAnchor` for an anchor file that is not one.
"""

from compliance.anchor import (
    AnchorBreak,
    StepAnchor,
    StepAnchorCheck,
    TrailAnchor,
    anchor_step_log,
    read_trail_anchor,
)
from compliance.audit import (
    ACK_PREFIX,
    AuditedMap,
    AuditReport,
    Finding,
    Note,
    RequiredStep,
    SignOff,
    UnknownSeverity,
    audit,
    justifications,
)
from compliance.catalogue import RULES, SEVERITIES, SOURCES, Rule, Source
from compliance.policy_chain import (
    BadAnchor,
    PolicyAnchor,
    PolicyTampering,
    PolicyTrailCheck,
    anchor_policy_trail,
    read_anchor,
    verify_policy_trail,
)
from compliance.report import sarif_log, to_json, to_markdown, to_sarif
from compliance.review import review_html, review_markdown
from compliance.signoff import (
    BadSignoff,
    SignoffCheck,
    SignoffRefused,
    SignoffTampering,
    UnknownFinding,
    sign_off,
    signoffs,
    verify_signoffs,
)
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
    "SOURCES",
    "AnchorBreak",
    "AuditReport",
    "AuditedMap",
    "BadAnchor",
    "BadSignoff",
    "Finding",
    "Note",
    "PolicyAnchor",
    "PolicyTampering",
    "PolicyTrailCheck",
    "RequiredStep",
    "Rule",
    "SignOff",
    "SignoffCheck",
    "SignoffRefused",
    "SignoffTampering",
    "Source",
    "StepAnchor",
    "StepAnchorCheck",
    "StepTrail",
    "Tampering",
    "TrailAnchor",
    "TrailSummary",
    "TrailVerification",
    "UnknownFinding",
    "UnknownSeverity",
    "anchor_policy_trail",
    "anchor_step_log",
    "audit",
    "justifications",
    "read_anchor",
    "read_trail_anchor",
    "review_html",
    "review_markdown",
    "sarif_log",
    "sign_off",
    "signoffs",
    "to_json",
    "to_markdown",
    "to_sarif",
    "trail_summary",
    "verify_policy_trail",
    "verify_signoffs",
    "verify_trail",
]
