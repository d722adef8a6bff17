"""Storage: bytes per active instance, against SpiffWorkflow's own JSON for the same workflow.

    python -m bench.storage [--instances 2000] [--steps 5] [--json PATH]

Starts `--instances` instances of bench/maps/linear10.bpmn on a fresh SQLite file (with
start_many), completes `--steps` of their ten steps (so they are active, mid-journey, with a
step_event history), checkpoints the WAL and measures:

* file growth per instance (file size after minus the size with the map deployed only);
* pages per table and index from SQLite's `dbstat` (when compiled in), per instance;
* per-row sizes: the state document, the waiting and context columns, the step events;
* SpiffWorkflow's JSON for the same workflow: the full document (with the spec, as a plain
  Spiff user stores it) and the state-only document nextmove stores.

Size does not depend on machine load; one run is enough.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from bench._common import MAPS, RESULTS, machine_info, write_result
from engine.runtime import NewProspect
from engine.runtime.state import dump_state
from nextmove import open_engine

MAP = MAPS / "linear10.bpmn"
PROCESS = "bench_linear10"
CONTEXT = {"market": "US", "source": "bench"}


def _file_bytes(path: Path) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path.stat().st_size


def measure(path: Path, instances: int, steps: int) -> dict[str, Any]:
    engine = open_engine(f"sqlite:///{path}", recommend=False)
    engine.deploy([MAP])
    empty = _file_bytes(path)
    ids = []
    for i in range(0, instances, 500):
        ids += [s.instance.id for s in engine.start_many(
            PROCESS, [NewProspect(f"p{k}", f"d{k % 100}", CONTEXT)
                      for k in range(i, min(i + 500, instances))])]
    step_ids = [f"step{k:02d}" for k in range(1, 11)]
    for step in step_ids[:steps]:
        for instance_id in ids:
            engine.complete(instance_id, step)
    workflow = engine.pipeline.workflow(ids[0])  # the engine's own deserialized copy
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    spiff_full = len(serializer.serialize_json(workflow).encode())
    state_only = len(dump_state(workflow).encode())
    engine.store.dispose()

    total = _file_bytes(path)
    conn = sqlite3.connect(path)
    rows = conn.execute(
        "SELECT count(*), avg(length(CAST(state AS BLOB))), avg(length(CAST(waiting AS BLOB))), "
        "avg(length(CAST(context AS BLOB))), sum(status = 'active') FROM instance").fetchone()
    events = conn.execute(
        "SELECT count(*), avg(coalesce(length(CAST(step_id AS BLOB)), 0) + "
        "coalesce(length(CAST(step_name AS BLOB)), 0) + coalesce(length(kind), 0) + "
        "coalesce(length(hook), 0) + coalesce(length(chain), 0) + coalesce(length(data), 0) "
        "+ 26) FROM step_event").fetchone()
    try:
        pages = dict(conn.execute(
            "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"))
    except sqlite3.OperationalError:  # dbstat not compiled in
        pages = {}
    conn.close()
    n = rows[0]
    return {
        "instances": n,
        "active": rows[4],
        "steps_done": steps,
        "file_bytes_per_instance": round((total - empty) / n),
        "pages_bytes_per_instance": {k: round(v / n) for k, v in pages.items()
                                     if "instance" in k or "step_event" in k},
        "state_document_bytes": round(rows[1]),
        "waiting_column_bytes": round(rows[2]),
        "context_column_bytes": round(rows[3]),
        "step_events_per_instance": round(events[0] / n, 1),
        "step_event_payload_bytes": round(events[1]),
        "spiff_full_json_bytes": spiff_full,
        "spiff_state_only_json_bytes": state_only,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storage",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=5, help="steps completed (of 10)")
    parser.add_argument("--json", type=Path, default=RESULTS / "storage.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nextmove-bench-") as tmp:
        found = measure(Path(tmp) / "storage.db", args.instances, args.steps)
    per = found["file_bytes_per_instance"]
    print(f"\nstorage per active instance of linear10 after {args.steps} of 10 steps "
          f"({found['instances']} instances, SQLite)")
    lines = [
        ("database file growth per instance", per),
        ("  state document (state-only JSON)", found["state_document_bytes"]),
        ("  waiting column", found["waiting_column_bytes"]),
        ("  context column", found["context_column_bytes"]),
        (f"  step events ({found['step_events_per_instance']}/instance, payload each)",
         found["step_event_payload_bytes"]),
        ("SpiffWorkflow full JSON (with spec) for it", found["spiff_full_json_bytes"]),
        ("SpiffWorkflow state-only JSON for it", found["spiff_state_only_json_bytes"]),
    ]
    for name, value in lines:
        print(f"{name:58} {value:>9,} B")
    for name, value in found["pages_bytes_per_instance"].items():
        print(f"  dbstat {name:49} {value:>9,} B")
    print(f"ratio file bytes / Spiff full JSON: {per / found['spiff_full_json_bytes']:.2f}; "
          f"/ Spiff state-only JSON: {per / found['spiff_state_only_json_bytes']:.2f}")
    result = {"benchmark": "bench.storage", "params": {"instances": args.instances,
                                                       "steps": args.steps},
              "machine": machine_info(), **found,
              "ratio_file_vs_spiff_full": round(per / found["spiff_full_json_bytes"], 2),
              "ratio_file_vs_spiff_state_only": round(
                  per / found["spiff_state_only_json_bytes"], 2),
              "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
