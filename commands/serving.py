"""The server: `serve`, and the API tokens it accepts (`token create`, `list`, `revoke`).
FastAPI and uvicorn are imported when `serve` runs, so other commands do not load them."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

from commands._errors import exit_codes
from commands._options import DbOption, JsonOption
from commands._output import err, out, own_id, print_json
from commands._wiring import open_store
from engine.errors import NextmoveError

app = typer.Typer()
token_app = typer.Typer(help="API tokens for `nextmove serve`: create (shown once), list, "
                        "revoke.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@app.command()
@exit_codes
def serve(
    host: Annotated[str, typer.Option(envvar="NEXTMOVE_HOST", help="Address to listen on.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="NEXTMOVE_PORT", help="Port to listen on.")
                    ] = 8080,
    workers: Annotated[int, typer.Option(envvar="NEXTMOVE_WORKERS", min=1, help="Worker "
                                         "processes (more than one needs PostgreSQL).")] = 1,
    webhook_secrets: Annotated[str | None, typer.Option(
        envvar="NEXTMOVE_WEBHOOK_SECRETS", help="JSON file of per-source webhook secrets "
        '{"source": "secret"}; NEXTMOVE_WEBHOOK_SECRET_<SOURCE> variables add to it.')] = None,
    webhook_window: Annotated[int, typer.Option(envvar="NEXTMOVE_WEBHOOK_WINDOW", min=1,
                                                help="Seconds a signed event stays "
                                                "acceptable.")] = 300,
    db: DbOption = None,
) -> None:
    """Serve the HTTP API and the card page (docs/api.md). Stops cleanly on Ctrl-C or
    SIGTERM: requests in flight, steps included, are finished first."""
    import uvicorn

    import service
    from service.app import LOG_CONFIG
    from service.settings import webhook_secrets as read_secrets

    settings = service.Settings(db=db, host=host, port=port, workers=workers,
                                webhook_secrets=read_secrets(webhook_secrets, os.environ),
                                webhook_window=webhook_window)
    with open_store(db) as store:  # once, before any worker: create or upgrade the schema
        if workers > 1 and store.is_sqlite:
            raise NextmoveError("--workers above 1 needs PostgreSQL: SQLite takes one writer "
                                "at a time")
        service.prepare_tables(store)
    err.print(f"nextmove serving {store.safe_url} on http://{host}:{port} "
              f"({workers} worker{'s' if workers > 1 else ''})", markup=False)
    common = {"host": host, "port": port, "log_config": LOG_CONFIG, "access_log": False,
              "timeout_graceful_shutdown": 30, "proxy_headers": False}
    if workers == 1:
        uvicorn.run(service.create_app(settings), **common)  # type: ignore[arg-type]
        return
    from service import workers as processes

    os.environ.update(settings.environment())  # what each worker builds its app from
    options = {k: v for k, v in common.items() if k not in ("host", "port")}
    processes.run(workers, host, port, options)


@token_app.command("create")
@exit_codes
def token_create(
    role: Annotated[str, typer.Option(help="designer, integrator, distributor, sponsor, lead, "
                                      "reviewer or admin.")],
    subject: Annotated[str, typer.Option(help="Who it is for: for a distributor or sponsor, "
                                         "their distributor id.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API token. It is shown once: only its hash is stored."""
    import service

    with open_store(db) as store:
        service.prepare_tables(store)
        made = service.create_token(store, role, subject)
    if as_json:
        print_json({**own_id(made.info.to_dict(), "token_id"), "token": made.token})
        return
    out.print(made.token, markup=False, soft_wrap=True)
    err.print(f"token {made.info.id} for {subject} ({role}); shown once, store it now",
              markup=False)


@token_app.command("list")
@exit_codes
def token_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every token (never its secret): id, prefix, role, subject, created, revoked."""
    import service

    with open_store(db) as store:
        service.prepare_tables(store)
        found = service.list_tokens(store)
    if as_json:
        print_json({"tokens": [own_id(t.to_dict(), "token_id") for t in found]})
        return
    table = Table("id", "prefix", "role", "subject", "created", "revoked", box=None)
    for t in found:
        table.add_row(str(t.id), t.prefix + "…", t.role, t.subject,
                      f"{t.created_at:%Y-%m-%d %H:%M}",
                      f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "")
    out.print(table)


@token_app.command("revoke")
@exit_codes
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (see `token list`).")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a token: it authenticates no one from now on."""
    import service

    with open_store(db) as store:
        service.prepare_tables(store)
        found = service.revoke_token(store, token_id)
    if as_json:
        print_json(own_id(found.to_dict(), "token_id"))
    else:
        out.print(f"revoked token {found.id} ({found.role} {found.subject})", markup=False)
