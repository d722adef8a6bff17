"""The API benchmark's lean load generator against a real server: its requests are applied,
refusals are reported, and its CPU accounting reads this machine."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from bench._http_load import Client, machine_busy_seconds, run, tree_cpu_seconds
from tests.service._server import Running
from tests.service._world import start


def test_the_lean_load_generator_completes_steps_and_reports_refusals(
        sqlite_api: Running) -> None:
    ours = [start(sqlite_api, f"p{i}", "d1") for i in range(3)]
    theirs = start(sqlite_api, "p-other", "d2")
    step = {"step": "add_contact"}
    d1, d2 = sqlite_api.token("distributor", "d1"), sqlite_api.token("distributor", "d2")
    clients = [Client(d1, [("POST", f"/instances/{i}/complete", step) for i in ours]),
               Client(d2, [("POST", f"/instances/{ours[0]}/complete", step),  # not d2's
                           ("POST", f"/instances/{theirs}/complete", step)])]
    where = urlsplit(sqlite_api.url)
    assert where.hostname and where.port
    seconds = run(where.hostname, where.port, clients)

    assert seconds > 0
    assert clients[0].errors == []
    (refused,) = clients[1].errors
    assert refused.startswith("403 ")
    for instance in [*ours, theirs]:
        done = [e.step_id for e in sqlite_api.engine.history(instance)
                if e.kind == "completed"]
        assert "add_contact" in done, instance


def test_cpu_accounting_reads_this_process_and_the_machine() -> None:
    before, busy = tree_cpu_seconds(os.getpid()), machine_busy_seconds()
    sum(i * i for i in range(2_000_000))
    after, busy_after = tree_cpu_seconds(os.getpid()), machine_busy_seconds()
    assert before is not None and after is not None and after > before
    assert busy is not None and busy_after is not None and busy_after > busy
