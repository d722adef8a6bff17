"""A distributor's action cards."""

from __future__ import annotations

from typing import Annotated

import typer

from commands._errors import exit_codes
from commands._options import DbOption, JsonOption, NowOption
from commands._output import out, print_json
from commands._wiring import engine_for

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
    engine = engine_for(db, now=now, recommend=True)
    found = engine.cards(distributor, limit=limit)
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
        if card.suggested_message:
            out.print(f"  message: {card.suggested_message}", markup=False)
        if card.follow_up_at:
            out.print(f"  follow up by {card.follow_up_at:%Y-%m-%d %H:%M}", markup=False)
        if card.waiting_for:
            out.print(f"  we'll remind you when: {', '.join(card.waiting_for)}", markup=False)
    shown = {(c.hook, s.option_id) for c in found if c.hook for s in c.content}
    if shown:
        from content_catalog.drift_alerts import open_alerts_on

        for record in open_alerts_on(engine.store, shown):
            out.print(f"drift alert (for the sponsor or lead): {record.sentence()}; review: "
                      f"nextmove drift --ack {record.option_id} --reviewer NAME "
                      "--decision keep|restore", markup=False, style="yellow")
