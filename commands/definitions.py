"""Process maps and catalogs: validate, export, deploy."""

from __future__ import annotations

from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from commands._errors import EXIT_CODES, exit_codes
from commands._options import AllowScripts, DbOption, JsonOption, NowOption
from commands._output import out, own_id, print_json, print_problems
from commands._wiring import engine_for
from engine.errors import DefinitionError, ErrorCode

app = typer.Typer()

MapPaths = Annotated[list[Path], typer.Argument(help="BPMN/YAML files or folders.")]


@app.command()
@exit_codes
def validate(
    paths: MapPaths,
    as_json: JsonOption = False,
    allow_scripts: AllowScripts = False,
) -> None:
    """Check process maps and catalogs; print every problem. Exit 3 (invalid input) if any
    error."""
    from nextmove import load as load_maps

    report = load_maps(paths, allow_scripts=allow_scripts)
    if as_json:
        print_json({
            "ok": report.ok,
            "files": report.files,
            "process_ids": [d.process_id for d in report.definitions],
            "problems": [p.to_dict() for p in report.problems],
        })
    else:
        print_problems(report.problems, out)
        status = "[green]ok[/green]" if report.ok else "[red]failed[/red]"
        out.print(f"{status}: {len(report.files)} file(s), {len(report.definitions)} process(es), "
                  f"{len(report.errors)} error(s), "
                  f"{len(report.problems) - len(report.errors)} warning(s)")
    raise typer.Exit(0 if report.ok else EXIT_CODES[ErrorCode.INVALID_INPUT])


class FlavourChoice(StrEnum):
    nextmove = "nextmove"
    camunda7 = "camunda7"
    camunda8 = "camunda8"
    spiff = "spiff"


@app.command()
@exit_codes
def export(
    source: Annotated[Path, typer.Argument(help="A YAML process map, or a BPMN file to rewrite "
                                           "in another flavour.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="BPMN file to write "
                                                "(default: next to the map, .bpmn; for a BPMN "
                                                "source, .<flavour>.bpmn).")] = None,
    flavour: Annotated[FlavourChoice, typer.Option(
        help="Whose properties to write: nextmove:, camunda: (Camunda 7 Modeler), zeebe: "
             "(Camunda 8 Modeler) or spiffworkflow: (SpiffArena). All load the same; see "
             "docs/bpmn.md.")] = FlavourChoice.nextmove,
    as_json: JsonOption = False,
) -> None:
    """Compile a YAML map to BPMN 2.0 with diagram layout, to open in a modeler; or rewrite a
    BPMN map's properties in another modeler's flavour."""
    from engine.definitions import parse_xml
    from engine.definitions.compile import export_bpmn
    from engine.definitions.flavours import with_flavour
    from engine.definitions.model import BPMN_NS

    if source.suffix.lower() in (".bpmn", ".xml"):
        target = output or source.with_suffix(f".{flavour.value}.bpmn")
        if target.resolve() == source.resolve():
            raise DefinitionError("--output must differ from the BPMN source", file=str(source))
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise DefinitionError(f"cannot read the file: {exc.strerror}", file=str(source),
                                  code="not-found") from exc
        xml = with_flavour(data, flavour.value)
        found = parse_xml(xml, str(source)).getroot().find(f"{{{BPMN_NS}}}process")
        process_id = found.get("id", "") if found is not None else ""
        target.write_bytes(xml)
    else:
        target = output or source.with_suffix(".bpmn")
        process_id = export_bpmn(source, target, flavour.value).process_id
        xml = target.read_bytes()
    if as_json:
        print_json({"process": process_id, "output": str(target), "bytes": len(xml),
                    "flavour": flavour.value})
    else:
        flavoured = "" if flavour == FlavourChoice.nextmove else f", {flavour.value} flavour"
        out.print(f"wrote {target} (process {process_id}{flavoured})", markup=False)


@app.command()
@exit_codes
def deploy(
    paths: MapPaths,
    db: DbOption = None,
    as_json: JsonOption = False,
    allow_scripts: AllowScripts = False,
) -> None:
    """Validate and deploy process maps; unchanged content keeps its version. Warnings (as
    `validate` gives them, e.g. an unknown step property) are printed on stderr; they do not
    stop the deploy."""
    deployed = engine_for(db, allow_scripts).deploy(paths)
    if as_json:
        catalogs = [{**asdict(c), "deployed_at": c.deployed_at.isoformat()}
                    for c in deployed.catalogs]
        print_json({"processes": [own_id(d.to_dict(), "definition_id") for d in deployed],
                    "catalogs": catalogs, "warnings": [p.to_dict() for p in deployed.warnings]})
        return
    print_problems(deployed.warnings)
    for d in deployed:
        what = "deployed" if d.created else "unchanged"
        back = "; reinstated: it was retired, new instances start again" if d.reinstated else ""
        out.print(f"{what}: {d.process_id} v{d.version} ({d.source_file}){back}", markup=False)
    for c in deployed.catalogs:
        what = "deployed" if c.created else "unchanged"
        policies = f"; default policies for {len(c.policies_created)} new hook(s)" \
            if c.policies_created else ""
        out.print(f"{what}: catalog {c.name} v{c.version} ({c.source_file}){policies}",
                  markup=False)


@app.command()
@exit_codes
def retire(
    process: Annotated[str, typer.Argument(help="The deployed process to retire.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept for the reviewers).")],
    actor: Annotated[str | None, typer.Option(help="Who retires it.")] = None,
    db: DbOption = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Retire a process: no new instance of it starts, and later catalogs need not fill its
    hooks; its running instances go on to their end. Deploying it again reinstates it.
    Retiring a retired process changes nothing and says when it was retired."""
    done = engine_for(db, now=now).retire(process, reason=reason, actor=actor)
    if as_json:
        print_json(done.to_dict())
        return
    if not done.created:
        out.print(f"already retired: {done.process_id} v{done.version} on "
                  f"{done.at:%Y-%m-%d %H:%M} UTC ({done.reason})", markup=False)
        return
    out.print(f"retired: {done.process_id} v{done.version}; {done.running} running "
              "instance(s) go on to their end; deploy it again to reinstate it", markup=False)
