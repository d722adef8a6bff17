"""Time to first sale as a survival view: `nextmove survival`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from commands._errors import exit_codes
from commands._options import AsOfOption, DbOption, JsonOption, instant
from commands._output import out, print_json
from commands._wiring import now_of, open_store

app = typer.Typer()


@app.command()
@exit_codes
def survival(
    now: AsOfOption = None,
    window_days: Annotated[int | None, typer.Option(
        min=1, help="The first-sale window in days; the curves end there (default: the "
        "map's declared first-sale indicator, else 14).")] = None,
    hook: Annotated[str | None, typer.Option(
        help="Group by the content first shown at this hook (default: the onboarding "
             "step whose declared outcome is first_sale).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Time from enrollment to first sale: Kaplan–Meier share with a first sale by the end
    of the window (95% band), by enrollment week and by content variant, with a log-rank
    test between the variants. Distributors still inside their window are censored, not
    counted as failures."""
    import analytics

    if now:
        instant(now, "--now")  # a bad --now is refused before the database is opened
    with open_store(db) as store:
        moment = now_of(store, now)
        found = analytics.survival(store, as_of=moment, window_days=window_days, hook=hook)
    if as_json:
        print_json(found.to_dict())
        return
    table = Table("group", "people", "sales", "inside", f"by day {found.window_days}", "95%",
                  "median d", box=None)
    sections = [("all", [found.overall]), ("enrolled week of", list(found.cohorts)),
                (f"shown at {found.hook}", list(found.variants))]
    for title, curves in sections:
        if not curves:
            continue
        if title != "all":
            table.add_row(f"[bold]{escape(title)}[/bold]")
        for c in curves:
            median = "" if c.median_days is None else f"{c.median_days:.1f}"
            low, high = c.band
            table.add_row(escape(c.label), str(c.subjects), str(c.events), str(c.still_inside),
                          f"{c.share_within:.0%}", f"{low:.0%}–{high:.0%}", median)
    out.print(table)
    out.print(f"{found.overall.still_inside} distributor(s) still inside their window are "
              "censored (counted until now), not failures", markup=False)
    test = found.variant_test
    if test is not None:
        out.print(f"log-rank test between variants: chi² = {test.chi2:.2f} on {test.df} df, "
                  f"p = {test.p:.3g}", markup=False)
