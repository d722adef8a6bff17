"""Guidance, not control: `audit` of maps, of the runtime trail, and of the trail's hashes;
`audit signoff` (a reviewer accepts a finding) and `audit review` (the reviewer's report).

`audit` is a group whose default command is `maps`: `nextmove audit MAPS...` and `nextmove
audit --verify` run it, as they did before the group had other commands."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from commands._errors import exit_codes
from commands._options import DbOption, JsonOption, optional_instant
from commands._output import json_text, out, own_id, print_json
from commands._wiring import open_store
from engine.errors import NextmoveError

if TYPE_CHECKING:
    import compliance


class _DefaultsToMaps(TyperGroup):
    """Runs `maps` unless the first word names one of the group's commands (or asks for the
    group's help)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args[:1] != ["--help"] and (not args or args[0] not in self.commands):
            args = ["maps", *args]
        return super().parse_args(ctx, args)


app = typer.Typer()
audit_app = typer.Typer(
    cls=_DefaultsToMaps, no_args_is_help=False,
    help="Guidance, not control: audit maps for control indicators (the default, `audit "
    "MAPS...`), verify or summarise the runtime trail, sign findings off, and write the "
    "reviewer's report.")
app.add_typer(audit_app, name="audit")
DocsUrl = Annotated[str | None, typer.Option(
    "--docs-url", help="Where the rules are explained (SARIF helpUri): your published "
    "docs/compliance.md. Default: the file in this checkout.")]


def _signoffs(db: str | None) -> list[compliance.SignOff]:
    """The sign-offs in `db`; none when no database was named and ./nextmove.db is absent
    (an audit never creates a database)."""
    import compliance
    from engine.store import DEFAULT_DB

    if db is None and not os.path.exists(DEFAULT_DB):
        return []
    with open_store(db) as store:
        return compliance.signoffs(store)


@audit_app.command("maps")
@exit_codes
def audit(
    paths: Annotated[list[Path] | None, typer.Argument(help="BPMN/YAML maps or folders.")] = None,
    output_format: Annotated[str, typer.Option("--format", help="md, json or sarif.")] = "md",
    fail_on: Annotated[str, typer.Option(help="Exit 1 on an unacknowledged finding at or "
                                         "above: info, low, medium, high.")] = "high",
    output: Annotated[Path | None, typer.Option("--output", "-o",
                                                help="Write the report here.")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Check the hash-chained trails in "
                                         "the database — each prospect's step log (cards "
                                         "shown, choices made) and the policy log (versions "
                                         "saved, activated, rolled back, with each policy's "
                                         "content hash) — for edited, removed or reordered "
                                         "records and edited policies. Exit 1 on tampering. "
                                         "Keep the JSON output (it holds the anchor: the "
                                         "policy log's head and the step log's instances "
                                         "and chains) to pass as --anchor later.")] = False,
    anchor: Annotated[Path | None, typer.Option("--anchor", help="With --verify: a kept "
                                                "`audit --verify --json` output. The policy "
                                                "log must still reach its head, and every "
                                                "instance in it must still exist and reach "
                                                "its chain as of then: this catches a log "
                                                "rewritten with fresh hashes, an instance "
                                                "deleted or its tail cut off. An older anchor "
                                                '(or {"records": N, "head": H}) checks the '
                                                "policy log only.")] = None,
    trail: Annotated[bool, typer.Option("--trail", help="Summarise what contractors did "
                                        "with each step: followed, skipped, varied.")] = False,
    process: Annotated[str | None, typer.Option(help="With --trail: one process.")] = None,
    since: Annotated[str | None, typer.Option(help="With --trail: from this date.")] = None,
    docs_url: DocsUrl = None,
    accepted: Annotated[str, typer.Option(
        "--accepted", help="SARIF: keep acknowledged and signed-off findings as suppressed "
        "results, or omit them (GitHub code scanning shows suppressed results as open "
        "alerts).")] = "keep",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Audit maps for control indicators (the default), or the runtime trail.

    Findings a reviewer signed off (`audit signoff`) for this version of their map are
    listed as signed off and never fail the audit; they are read from --db (or
    ./nextmove.db if it exists).

    --verify proves the trail unaltered: every card shown and choice made (step log), every
    policy change (policy log) and every sign-off is a hash-chained record; exit 1 names
    what changed."""
    import compliance

    if verify:
        kept = compliance.read_trail_anchor(anchor) if anchor else None
        with open_store(db) as store:
            check = compliance.verify_trail(store, anchor=kept)
        _emit_report(check.to_dict(), _verification_text(check), output, as_json)
        raise typer.Exit(0 if check.ok else 1)
    if trail:
        start = optional_instant(since, "--since")
        with open_store(db) as store:
            summary = compliance.trail_summary(store, process=process, since=start)
        _emit_report(summary.to_dict(), _trail_text(summary), output, as_json)
        return
    if not paths:
        raise NextmoveError("give maps to audit, or --verify / --trail")

    def sarif(report: compliance.AuditReport) -> str:
        return compliance.to_sarif(report, docs=docs_url, accepted=accepted)

    renderers = {"md": compliance.to_markdown, "json": compliance.to_json, "sarif": sarif}
    if output_format not in renderers:
        raise NextmoveError(f"--format must be one of {', '.join(renderers)}")
    if accepted not in ("keep", "omit"):
        raise NextmoveError("--accepted must be keep or omit")
    report = compliance.audit(paths, fail_on=fail_on, signoffs=_signoffs(db))
    if as_json or output_format == "json":
        text = json_text(_contract(json.loads(compliance.to_json(report))))
    else:
        text = renderers[output_format](report)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        out.print(f"wrote {output}", markup=False)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    raise typer.Exit(1 if report.failed(fail_on) else 0)


@audit_app.command("signoff")
@exit_codes
def signoff(
    finding: Annotated[str, typer.Argument(help="The finding, as the audit names it: "
                                           "RULE:process/step, or RULE:process/step/element "
                                           "for a timer.")],
    paths: Annotated[list[Path], typer.Argument(help="The BPMN/YAML maps it is in: the "
                                                "sign-off binds to this version of them.")],
    reviewer: Annotated[str, typer.Option(help="Who accepts the finding.")],
    reason: Annotated[str, typer.Option(help="Why it is accepted (at least four words).")],
    now: Annotated[str | None, typer.Option("--now", envvar="NEXTMOVE_NOW",
                                            help="Record this time instead of now.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Accept a finding as a reviewer: records who, when, why, bound to the map's hash.

    The sign-off joins a hash chain that `audit --verify` checks. When the map changes the
    sign-off no longer applies and the finding is open again."""
    import compliance

    at = optional_instant(now, "--now") or datetime.now(UTC)
    with open_store(db) as store:
        report = compliance.audit(paths, signoffs=compliance.signoffs(store))
        if report.problems:
            raise NextmoveError(f"{report.problems[0].file}: {report.problems[0].message}")
        done = compliance.sign_off(store, report, finding, reviewer=reviewer, reason=reason,
                                   at=at)
    if as_json:
        print_json(own_id(done.to_dict(), "signoff_id"))
    else:
        out.print(f"signed off {done.finding} by {done.reviewer} on "
                  f"{done.at:%Y-%m-%d %H:%M} UTC (map {done.map_hash[:12]}…, sign-off "
                  f"{done.id})", markup=False)


@audit_app.command("review")
@exit_codes
def review(
    paths: Annotated[list[Path], typer.Argument(help="BPMN/YAML maps or folders.")],
    output_format: Annotated[str, typer.Option("--format", help="md or html.")] = "md",
    output: Annotated[Path | None, typer.Option("--output", "-o",
                                                help="Write the report here.")] = None,
    fail_on: Annotated[str, typer.Option(help="The threshold the result is judged "
                                         "against.")] = "high",
    db: DbOption = None,
) -> None:
    """The reviewer's report (Markdown or HTML): open and signed-off findings, the trail.

    The runtime evidence is what contractors did at each step of the audited maps
    (followed, skipped, varied), read from --db (or ./nextmove.db if it exists)."""
    import compliance
    from engine.store import DEFAULT_DB

    renderers = {"md": compliance.review_markdown, "html": compliance.review_html}
    if output_format not in renderers:
        raise NextmoveError(f"--format must be one of {', '.join(renderers)}")
    summary: Any = None
    found: list[compliance.SignOff] = []
    if db is not None or os.path.exists(DEFAULT_DB):
        with open_store(db) as store:
            found = compliance.signoffs(store)
            summary = compliance.trail_summary(store)
    report = compliance.audit(paths, fail_on=fail_on, signoffs=found)
    text = renderers[output_format](report, summary)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        out.print(f"wrote {output}", markup=False)
    else:
        sys.stdout.write(text)


def _contract(body: dict[str, Any]) -> dict[str, Any]:
    """The audit's JSON with each rule's, finding's and sign-off's own id named as the --json
    contract says (`rule_id`, `source_id`, `finding_id`, `signoff_id`)."""
    rules = [own_id(rule, "rule_id") for rule in body.get("rules", [])]
    for rule in rules:
        rule["sources"] = [own_id(source, "source_id") for source in rule.get("sources", [])]
    body["rules"] = rules
    findings = [own_id(found, "finding_id") for found in body.get("findings", [])]
    for found in findings:
        if found.get("signoff"):
            found["signoff"] = own_id(found["signoff"], "signoff_id")
    body["findings"] = findings
    return body


def _emit_report(data: dict[str, object], text: str, output: Path | None, as_json: bool
                 ) -> None:
    body = json_text(data) if as_json else text
    if output is not None:
        output.write_text(body, encoding="utf-8")
    else:
        sys.stdout.write(body)


def _verification_text(check: compliance.TrailVerification) -> str:
    anchored = check.anchored
    problems = [f"  {t.what}: instance {t.instance_id} — {t.detail}" for t in check.tampered]
    problems += [f"  {t.what}: {t.detail}" for t in anchored.tampered] if anchored else []
    if not problems:
        held = anchored.anchor if anchored else None
        lines = [f"step log intact: {check.checked} events checked, no tampering found"
                 + (f" (and its {held.instances} anchored instances still reach the anchor)"
                    if held else "")]
    else:
        lines = [f"STEP LOG TAMPERED: {len(problems)} problem(s) in {check.checked} events"]
        lines += problems
    if anchored is not None and anchored.anchor is None:
        lines.append("step log not checked against the anchor: it is an older anchor, with "
                     "the policy log's head only, and cannot show instances removed or chains "
                     "cut off or rewritten before it; keep this run's --json as the anchor")
    policy = check.policy
    if policy.ok:
        lines.append(f"policy log intact: {policy.checked} records checked, no tampering found"
                     + (" (and it still reaches the anchor)" if policy.anchor else ""))
    else:
        lines.append(f"POLICY LOG TAMPERED: {len(policy.tampered)} problem(s) in "
                     f"{policy.checked} records")
        lines += [f"  {t.what}: " + (f"record {t.record_id} — " if t.record_id else "")
                  + t.detail for t in policy.tampered]
    signed = check.signoffs
    if signed is not None and signed.ok:
        lines.append(f"sign-offs intact: {signed.checked} records checked, no tampering found")
    elif signed is not None:
        lines.append(f"SIGN-OFFS TAMPERED: {len(signed.tampered)} problem(s) in "
                     f"{signed.checked} records")
        lines += [f"  {t.what}: {t.detail}" for t in signed.tampered]
    if policy.ok:  # what to keep outside the database, for --anchor later
        lines.append(f"policy log head after {policy.records} records: {policy.head}")
    steps = check.step_anchor
    if steps is not None and check.ok:  # no anchor to keep from a tampered database
        lines.append(f"step log anchor: {steps.instances} instances up to event "
                     f"{steps.events} (keep the --json output to pass as --anchor)")
    return "\n".join(lines) + "\n"


def _trail_text(summary: compliance.TrailSummary) -> str:
    lines = [f"{summary.contractors} contractor(s); {summary.deviated} "
             f"({summary.deviation_share:.0%}) skipped or varied a step at least once", ""]
    lines.append(f"{'step':32} {'offered':>8} {'followed':>9} {'skipped':>8} {'varied':>7} "
                 f"{'deviated':>9}")
    for st in summary.steps:
        lines.append(f"{st.name[:32]:32} {st.offered:>8} {st.followed:>9} {st.skipped:>8} "
                     f"{st.varied:>7} {st.deviation_share:>8.0%}")
    return "\n".join(lines) + "\n"
