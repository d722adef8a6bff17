"""Maps: validate and deploy (uploaded files), the deployed versions, the map audit, and a
reviewer's sign-off of one of its findings (the reviewer role's one write)."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path, PurePath
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, UploadFile
from fastapi.responses import Response
from pydantic import Field

import compliance
import nextmove
from engine import DefinitionErrors, NextmoveError
from service._deps import EngineDep, allow
from service._strict import Body
from service.idempotency import fingerprint, once_claimed
from service.roles import Principal, Role

router = APIRouter(tags=["maps"])
Files = Annotated[list[UploadFile], File(description="BPMN/YAML maps and catalog files.")]
MAX_BYTES = 5_000_000
UPLOAD = "upload:"  # a deployed file's recorded source: the scratch folder will be gone


@contextmanager
def _uploaded(files: list[UploadFile]) -> Iterator[tuple[Path, str]]:
    """The files in a fresh folder under their own base names, and their combined hash."""
    total = hashlib.sha256()
    with tempfile.TemporaryDirectory(prefix="nextmove-upload-") as folder:
        for upload in files:
            name = PurePath(upload.filename or "").name
            if not name or name.startswith("."):
                raise NextmoveError(f"an uploaded file needs a plain name, not "
                                    f"{upload.filename!r}")
            data = upload.file.read(MAX_BYTES + 1)
            if len(data) > MAX_BYTES:
                raise NextmoveError(f"{name} is larger than {MAX_BYTES} bytes")
            total.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
            (Path(folder) / name).write_bytes(data)
        yield Path(folder), total.hexdigest()


def _relative(text: str | None, folder: Path) -> str | None:
    return text.replace(str(folder) + "/", "") if text else text


@router.post("/maps/validate", summary="Check maps and catalogs; every problem is listed")
def validate(files: Files,
             _who: Annotated[Principal, allow(Role.DESIGNER, Role.REVIEWER)]) -> dict[str, Any]:
    with _uploaded(files) as (folder, _):
        report = nextmove.load([folder])
        problems = [{**p.to_dict(), "file": _relative(p.file, folder)} for p in report.problems]
    return {"ok": report.ok, "processes": [d.process_id for d in report.definitions],
            "problems": problems}


@router.post("/maps", status_code=201, summary="Validate and deploy maps and catalogs")
def deploy(files: Files, engine: EngineDep, who: Annotated[Principal, allow(Role.DESIGNER)],
           idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
           ) -> Response:
    with _uploaded(files) as (folder, digest):
        def work() -> dict[str, Any]:
            try:
                deployed = engine.deploy([folder], origin=UPLOAD)
            except DefinitionErrors as exc:  # name the files as uploaded, not the scratch path
                raise DefinitionErrors([replace(p, file=_relative(p.file, folder))
                                        for p in exc.problems]) from None
            return {"processes": [d.to_dict() for d in deployed],
                    "catalogs": [asdict(c) for c in deployed.catalogs],
                    "warnings": [replace(p, file=_relative(p.file, folder)).to_dict()
                                 for p in deployed.warnings],
                    "deployed_by": who.subject}

        return once_claimed(engine, who, idempotency_key, fingerprint("deploy", digest), work,
                            status=201)


@router.get("/maps", summary="Deployed process versions")
def definitions(engine: EngineDep, _who: Annotated[Principal, allow(
        Role.DESIGNER, Role.INTEGRATOR, Role.LEAD, Role.REVIEWER)],
                process: str | None = None) -> list[dict[str, Any]]:
    return [d.to_dict() for d in engine.definitions(process)]


class RetireRequest(Body):
    reason: str = Field(description="Why the process is retired (kept for the reviewers).",
                        examples=["the brand stopped running webinars"])


@router.post("/maps/{process}/retire", summary="Retire a process: no new instances, its hooks "
             "no longer bind catalogs, running ones go on")
def retire(process: str, body: RetireRequest, engine: EngineDep,
           who: Annotated[Principal, allow(Role.DESIGNER)]) -> dict[str, Any]:
    """The token's subject is recorded as who retired it. Retiring a retired process changes
    nothing and answers with that retirement (`created` false); deploying the process again
    (`POST /maps`) reinstates it."""
    return engine.retire(process, reason=body.reason, actor=who.subject).to_dict()


@router.post("/compliance/audit", tags=["compliance"],
             summary="Audit maps for control indicators (guidance, not control)")
def audit(files: Files, engine: EngineDep,
          _who: Annotated[Principal, allow(Role.DESIGNER, Role.REVIEWER)]) -> dict[str, Any]:
    with _uploaded(files) as (folder, _):
        report = compliance.audit([folder], signoffs=compliance.signoffs(engine.store))
        text = compliance.to_json(report).replace(str(folder) + "/", "")
    found: dict[str, Any] = json.loads(text)
    return found


@router.post("/compliance/signoffs", tags=["compliance"], status_code=201,
             summary="Sign off a finding of the uploaded maps as the reviewer (who, when, why)")
def signoff(files: Files, engine: EngineDep,
            who: Annotated[Principal, allow(Role.REVIEWER)],
            finding: Annotated[str, Form(description="RULE:process/step[/element], as the "
                                         "audit names it.")],
            reason: Annotated[str, Form(description="Why it is accepted (four words or "
                                        "more).")]) -> dict[str, Any]:
    """Records that the token's subject accepts `finding` for this version of the uploaded
    maps (bound to its content hash: a changed map voids it), in the hash-chained sign-offs
    that `/compliance/verify` checks."""
    with _uploaded(files) as (folder, _):
        report = compliance.audit([folder], signoffs=compliance.signoffs(engine.store))
    if report.problems:
        raise NextmoveError(f"{PurePath(report.problems[0].file or '').name}: "
                            f"{report.problems[0].message}")
    done = compliance.sign_off(engine.store, report, finding, reviewer=who.subject,
                               reason=reason, at=engine.clock.now())
    return done.to_dict()
