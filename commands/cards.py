"""A distributor's action cards."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from commands._errors import exit_codes
from commands._options import DbOption, JsonOption, NowOption
from commands._output import out, print_json
from commands._read_only import open_read_only, read_cards
from commands._wiring import engine_for

if TYPE_CHECKING:
    from content_catalog.drift_alerts import DriftRecord
    from engine.runtime.cards import ActionCard

app = typer.Typer()


@app.command()
@exit_codes
def cards(
    distributor: Annotated[str, typer.Option("--distributor", "-d", help="Distributor id.")],
    limit: Annotated[int, typer.Option(help="At most this many instances.")] = 500,
    now: NowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The distributor's action cards: due and overdue follow-ups first. A content item on them
    with an open drift alert gets a line for the sponsor or lead at the end."""
    from content_catalog.drift_alerts import open_alerts_in, open_alerts_on

    reads = open_read_only(db)  # an SQLite file of this schema: read without SQLAlchemy
    if reads is None:
        engine = engine_for(db, now=now, recommend=True)
        _show(engine.cards(distributor, limit=limit), as_json,
              lambda shown: open_alerts_on(engine.store, shown))
        return
    try:
        _show(read_cards(reads, distributor, limit, now), as_json,
              lambda shown: open_alerts_in(reads, shown))
    finally:
        reads.close()


def _show(found: list[ActionCard], as_json: bool,
          alerts: Callable[[set[tuple[str, str]]], list[DriftRecord]]) -> None:
    if as_json:
        print_json({"cards": [c.to_dict() for c in found]})
        return
    if not found:
        out.print("no cards: nothing waits on this distributor")
    for card in found:
        flag = "OVERDUE " if card.overdue else ""
        head = f"{flag}{card.step_name} — prospect {card.prospect_id} ({card.process_id})"
        out.print(head, markup=False, style="bold")
        if card.guidance:
            out.print(f"  {card.guidance}", markup=False)
        if card.control == "required":
            out.print(f"  required: {card.basis}", markup=False)
        for item in card.content:
            mark = "→" if item.top else " "
            out.print(f"  {mark} {item.option_id}  {item.title or ''}  "
                      f"(p={item.probability:.2f})", markup=False)
        if card.no_content:
            out.print(f"  no content: {card.no_content}", markup=False, style="yellow")
        if card.suggested_message:
            out.print(f"  message: {card.suggested_message}", markup=False)
        if card.follow_up_at:
            out.print(f"  follow up by {card.follow_up_at:%Y-%m-%d %H:%M}", markup=False)
        if card.waiting_for:
            out.print(f"  we'll remind you when: {', '.join(card.waiting_for)}", markup=False)
    shown = {(c.hook, s.option_id) for c in found if c.hook for s in c.content}
    if shown:
        for record in alerts(shown):
            out.print(f"drift alert (for the sponsor or lead): {record.sentence()}; review: "
                      f"nextmove drift --ack {record.option_id} --reviewer NAME "
                      "--decision keep|restore", markup=False, style="yellow")
