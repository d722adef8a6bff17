"""An `AuditReport` as Markdown (for people), JSON (for scripts) and SARIF 2.1.0 (for code
scanning tools: GitHub, Azure DevOps, IDE viewers).

In SARIF an acknowledged finding is a result with an accepted in-source suppression carrying
its justification, and a signed-off one an accepted external suppression carrying the
reviewer's reason, name and date, so viewers show it as dismissed with the reason (GitHub
code scanning ignores suppressions unless told otherwise: dismiss there too, or filter the
log), and `partialFingerprints`
identify a finding by rule, process and step, so it stays the same finding when lines move.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from compliance.audit import DEFAULT_FAIL_ON, AuditReport, Finding
from compliance.catalogue import DOC, RULES, RULES_BY_ID, Rule

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL = "nextmove-audit"
_LEVELS = {"high": "error", "medium": "warning", "low": "note", "info": "note"}
_INTRO = (
    "Guidance, not control: this report lists where the audited process maps could read as "
    "control over *how* independent contractors do their work (the behavioural indicators "
    "weighed under the IRS common-law test, prong A of the ABC test and the DOL's "
    "economic-reality test; sources and fixes for each rule in docs/compliance.md), and the "
    "justification or reviewer's sign-off recorded for each one the brand keeps on purpose."
)


def _version() -> str:
    try:
        return metadata.version("nextmove")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def to_json(report: AuditReport) -> str:
    """The report, its threshold and the rule catalogue as indented JSON."""
    body = {"tool": TOOL, "version": _version(), **report.to_dict(),
            "rules": [r.to_dict() for r in RULES]}
    return json.dumps(body, indent=2, ensure_ascii=False)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _where(f: Finding) -> str:
    return f"{f.file}:{f.line}" if f.line else f.file


def to_markdown(report: AuditReport) -> str:
    """A reviewer's report: result, counts, findings by file, required steps, the rules."""
    threshold = report.fail_on or DEFAULT_FAIL_ON
    open_ = report.unacknowledged(threshold)
    out = ["# nextmove compliance audit", "", _INTRO, ""]
    if report.failed(threshold):
        why = [f"{len(open_)} unacknowledged finding(s) at or above `{threshold}`"] if open_ \
            else []
        why += [f"{len(report.problems)} file problem(s) kept maps from being audited"] \
            if report.problems else []
        out.append(f"**Result: FAILED** ({'; '.join(why)}).")
    else:
        out.append(f"**Result: PASSED**: no unacknowledged finding at or above `{threshold}`.")
    out += ["", "| severity | open | acknowledged | signed off |", "|---|---:|---:|---:|"]
    out += [f"| {s} | {c['open']} | {c['acknowledged']} | {c['signed_off']} |"
            for s, c in report.counts().items()]
    out += ["", "## Maps audited", "", "| process | name | file | format | steps |",
            "|---|---|---|---|---:|"]
    out += [f"| `{m.process}` | {_cell(m.name)} | `{m.file}` | {m.format} | {m.steps} |"
            for m in report.maps]
    out += ["", "## Findings", ""]
    if not report.findings:
        out.append("None: every audited step reads as guidance the contractor may follow, "
                   "change or skip.")
    files = list(dict.fromkeys(f.file for f in report.findings))
    for file in files:
        out += [f"### `{file}`", ""]
        for f in (x for x in report.findings if x.file == file):
            mark = "acknowledged" if f.acknowledged else "signed off" if f.signed_off \
                else "**open**"
            out.append(f"- **{f.rule} {f.name}** ({f.severity}, {f.factor}; {mark}) at "
                       f"`{_where(f)}`, step `{f.step}`: {f.message}. Finding `{f.id}`.")
            if f.acknowledged:
                out.append(f"  - Justification: {f.justification}")
            if f.signoff is not None:
                out.append(f"  - {signoff_line(f)}")
            if not f.acknowledged and not f.signed_off:
                out.append(f"  - Fix: {f.fix}.")
        out.append("")
    out += ["## Required steps and their basis", ""]
    if report.required:
        out += ["| process | step | where | basis |", "|---|---|---|---|"]
        out += [f"| `{r.process}` | {_cell(r.name)} (`{r.step}`) | "
                f"`{r.file}{':' + str(r.line) if r.line else ''}` | "
                f"{_cell(r.basis) if r.basis else '**none given**'} |" for r in report.required]
    else:
        out.append("No step is required: contractors may skip or vary every step.")
    if report.problems:
        out += ["", "## Files that could not be audited", ""]
        out += [f"- {_cell(p)}" for p in report.problems]
    if report.notes:
        out += ["", "## Notes", ""]
        out += [f"- `{n.file}{':' + str(n.line) if n.line else ''}`: {n.message}"
                for n in report.notes]
    out += ["", "## Rules", "", "| rule | severity | relates to | looks for | fix | explained |",
            "|---|---|---|---|---|---|"]
    out += [f"| **{r.id}** {r.name} | {r.severity} | {_cell('; '.join(r.tests))} | "
            f"{_cell(r.looks_for)} | {_cell(r.fix)} | [{DOC}#{r.anchor}]({DOC}#{r.anchor}) |"
            for r in RULES]
    out += ["", "A finding is acknowledged by a step property `compliance.<RULE>` whose value "
            "is the written justification (at least four words), or signed off by a reviewer "
            "(`nextmove audit signoff FINDING`) for one version of its map."]
    return "\n".join(out) + "\n"


def signoff_line(f: Finding) -> str:
    """"Signed off by NAME on DATE: reason" for a signed-off finding."""
    s = f.signoff
    return "" if s is None else (f"Signed off by {s.reviewer} on {s.at:%Y-%m-%d %H:%M} UTC: "
                                 f"{s.reason}")


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def _help_markdown(rule: Rule) -> str:
    lines = [f"**{rule.title}** (IRS category: {rule.category}).", "",
             f"**Why it matters:** {rule.why}", "", f"**How to fix:** {rule.fix}.", "",
             "**Factors:** " + "; ".join(rule.tests) + ".", "", "**Sources:**", ""]
    lines += [f"- {s.citation}: {s.says}." for s in rule.sources]
    return "\n".join(lines)


def _rule_descriptor(rule: Rule, docs: str) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": _pascal(rule.name),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": f"Looks for {rule.looks_for}."},
        "help": {"text": f"Why: {rule.why} Fix: {rule.fix}. Sources: "
                 + "; ".join(s.citation for s in rule.sources) + ".",
                 "markdown": _help_markdown(rule)},
        "helpUri": f"{docs}#{rule.anchor}",
        "defaultConfiguration": {"level": _LEVELS[rule.severity]},
        "properties": {"severity": rule.severity, "factor": rule.factor,
                       "tests": list(rule.tests), "category": rule.category,
                       "sources": [s.citation for s in rule.sources],
                       "tags": ["compliance", "worker-classification", rule.factor]},
    }


def docs_uri(root: str | Path | None = None) -> str:
    """Where the rules are explained: docs/compliance.md under `root` (else this checkout) as
    an absolute file URI. Pass your published copy's URL to `sarif_log(docs=...)` instead."""
    base = Path(root) if root is not None else Path(__file__).resolve().parent.parent
    return (base.resolve() / DOC).as_uri()


def _uri(file: str, root: Path | None) -> str:
    path = Path(file)
    if root is not None and path.is_absolute():
        try:
            path = path.relative_to(root)
        except ValueError:
            return path.as_uri()
    return path.as_uri() if path.is_absolute() else path.as_posix()


def _location(file: str, line: int | None, root: Path | None) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(file, root)}}
    if line:
        physical["region"] = {"startLine": line}
    return {"physicalLocation": physical}


def _result(f: Finding, index: int, root: Path | None) -> dict[str, Any]:
    location = _location(f.file, f.line, root)
    kind = "object" if f.file.endswith((".yaml", ".yml")) else "element"
    location["logicalLocations"] = [{"name": f.step, "fullyQualifiedName": f"{f.process}/{f.step}",
                                     "kind": kind}]
    identity = "/".join((f.rule, f.process, f.step, f.element or ""))
    result: dict[str, Any] = {
        "ruleId": f.rule,
        "ruleIndex": index,
        "level": _LEVELS[f.severity],
        "message": {"text": f"{f.message}. Fix: {f.fix}."},
        "locations": [location],
        "partialFingerprints": {
            "nextmoveFinding/v1": hashlib.sha256(identity.encode()).hexdigest()[:32]},
        "properties": {"severity": f.severity, "factor": f.factor, "process": f.process,
                       "step": f.step, **({"element": f.element} if f.element else {})},
    }
    suppressions: list[dict[str, Any]] = []
    if f.acknowledged:
        suppressions.append({"kind": "inSource", "status": "accepted",
                             "justification": f.justification or ""})
    if f.signoff is not None:
        suppressions.append({"kind": "external", "status": "accepted",
                             "justification": f.signoff.reason,
                             "properties": {"reviewer": f.signoff.reviewer,
                                            "date": f.signoff.at.isoformat(),
                                            "signoff": f.signoff.id,
                                            "mapHash": f.signoff.map_hash}})
    if suppressions:
        result["suppressions"] = suppressions
    result["properties"]["finding"] = f.id
    return result


def sarif_log(report: AuditReport, *, root: str | Path | None = None,
              docs: str | None = None, accepted: str = "keep") -> dict[str, Any]:
    """The report as a SARIF 2.1.0 log (a dict); absolute paths under `root` become relative.
    Each rule's `helpUri` points into `docs` (default: `docs_uri()`), at the rule's section.
    `accepted="omit"` leaves acknowledged and signed-off findings out of the results (for
    viewers such as GitHub code scanning that show suppressed results as open alerts)."""
    if accepted not in ("keep", "omit"):
        raise ValueError(f"accepted must be keep or omit, not {accepted!r}")
    shown = [f for f in report.findings if f.rule in RULES_BY_ID
             and (accepted == "keep" or not (f.acknowledged or f.signed_off))]
    base = Path(root).resolve() if root is not None else None
    index = {r.id: i for i, r in enumerate(RULES)}
    notifications = [
        {"level": "error", "message": {"text": p.message},
         "locations": [_location(p.file, p.line, base)] if p.file else []}
        for p in report.problems
    ] + [
        {"level": "note", "message": {"text": n.message},
         "locations": [_location(n.file, n.line, base)] if n.file else []}
        for n in report.notes
    ]
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": TOOL,
            "version": _version(),
            "rules": [_rule_descriptor(r, docs or docs_uri()) for r in RULES],
        }},
        "invocations": [{"executionSuccessful": not report.problems,
                         "toolExecutionNotifications": notifications}],
        "results": [_result(f, index[f.rule], base) for f in shown],
        "properties": {"failOn": report.fail_on or DEFAULT_FAIL_ON,
                       "failed": report.failed(),
                       **({"acceptedOmitted": len(report.findings) - len(shown)}
                          if accepted == "omit" else {})},
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def to_sarif(report: AuditReport, *, root: str | Path | None = None,
             docs: str | None = None, accepted: str = "keep") -> str:
    """`sarif_log` as indented JSON text."""
    return json.dumps(sarif_log(report, root=root, docs=docs, accepted=accepted), indent=2,
                      ensure_ascii=False)
