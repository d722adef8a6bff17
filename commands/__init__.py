"""The `nextmove` commands, one module per group; `cli.py` assembles them into one app.

    definitions   validate, export, deploy
    instances     start, complete, skip, vary, outcome, show, list, tick, worker, signal
    cards         cards
    learning      recommend, import-log, variants, learn, drift, policy {history,activate,rollback}
    analytics     report, funnel, stuck, indicators, cohorts, export-log
    compliance    audit
    admin         simulate, demo

Each group module has an `app` (a typer.Typer) that `cli.py` adds without a name, so its
commands stay at the top level (`nextmove start`). Shared pieces:

    _options      options declared once (--db, --json, --now, --prospect, ...) and value parsing
    _errors       `exit_codes`: the one handler that turns errors into messages and exit codes
    _wiring       `engine_for` (the one place an engine is assembled) and `open_store`
    _output       the stdout/stderr consoles, JSON output, progress bars, instance printing

Commands that learn import `learner`/`analytics` (LightGBM, pandas, pyarrow) when they run, so
`nextmove --help` and the instance commands do not load them.
"""
