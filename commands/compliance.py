"""Guidance, not control: `audit` of maps, of the runtime trail, and of the trail's hashes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from commands._errors import exit_codes
from commands._options import DbOption, JsonOption, optional_instant
from commands._output import json_text, out, own_id
from commands._wiring import open_store
from engine.errors import NextmoveError

if TYPE_CHECKING:
    import compliance

app = typer.Typer()


@app.command()
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
                                         "Keep the JSON output (it holds the policy log's "
                                         "head) to pass as --anchor later.")] = False,
    anchor: Annotated[Path | None, typer.Option("--anchor", help="With --verify: a kept "
                                                "`audit --verify --json` output (or "
                                                '{"records": N, "head": H}); the policy log '
                                                "must still reach that head, which catches a "
                                                "log rewritten with fresh hashes.")] = None,
    trail: Annotated[bool, typer.Option("--trail", help="Summarise what contractors did "
                                        "with each step: followed, skipped, varied.")] = False,
    process: Annotated[str | None, typer.Option(help="With --trail: one process.")] = None,
    since: Annotated[str | None, typer.Option(help="With --trail: from this date.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Guidance, not control: audit maps for control indicators, or the runtime trail.

    --verify proves the trail unaltered: every card shown and choice made (step log) and
    every policy change (policy log) is a hash-chained record; exit 1 names what changed."""
    import compliance

    if verify:
        kept = compliance.read_anchor(anchor) if anchor else None
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
    report = compliance.audit(paths, fail_on=fail_on)
    renderers = {"md": compliance.to_markdown, "json": compliance.to_json,
                 "sarif": compliance.to_sarif}
    if output_format not in renderers:
        raise NextmoveError(f"--format must be one of {', '.join(renderers)}")
    if as_json or output_format == "json":
        body = json.loads(compliance.to_json(report))
        body["rules"] = [own_id(rule, "rule_id") for rule in body.get("rules", [])]
        text = json_text(body)
    else:
        text = renderers[output_format](report)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        out.print(f"wrote {output}", markup=False)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    raise typer.Exit(1 if report.failed(fail_on) else 0)


def _emit_report(data: dict[str, object], text: str, output: Path | None, as_json: bool
                 ) -> None:
    body = json_text(data) if as_json else text
    if output is not None:
        output.write_text(body, encoding="utf-8")
    else:
        sys.stdout.write(body)


def _verification_text(check: compliance.TrailVerification) -> str:
    if not check.tampered:
        lines = [f"step log intact: {check.checked} events checked, no tampering found"]
    else:
        lines = [f"STEP LOG TAMPERED: {len(check.tampered)} problem(s) in {check.checked} events"]
        lines += [f"  {t.what}: instance {t.instance_id} — {t.detail}" for t in check.tampered]
    policy = check.policy
    if policy.ok:
        lines.append(f"policy log intact: {policy.checked} records checked, no tampering found"
                     + (" (and it still reaches the anchor)" if policy.anchor else ""))
    else:
        lines.append(f"POLICY LOG TAMPERED: {len(policy.tampered)} problem(s) in "
                     f"{policy.checked} records")
        lines += [f"  {t.what}: " + (f"record {t.record_id} — " if t.record_id else "")
                  + t.detail for t in policy.tampered]
    if policy.ok:  # what to keep outside the database, for --anchor later
        lines.append(f"policy log head after {policy.records} records: {policy.head}")
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
