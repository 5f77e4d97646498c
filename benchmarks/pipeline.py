"""The worker's pipeline at scale: how long the inbox processor and then the derivation runner
(orders, touchpoints, attribution, rollups) take to turn N accepted events into profiles,
orders, credits and rollups, in one process, on a fresh database.

    .venv/bin/python -m benchmarks.pipeline --backend sqlite|postgresql [--bodies 1000]

Each body is a realistic 100-event batch (benchmarks.payloads: journeys of new visitors, about a
tenth of them ordering). The bodies are accepted through the API first (not timed), then the
processor drains the inbox and the runner drains its queue, each timed alone. Writes
benchmarks/results/pipeline-<backend>.json. A run at twice the bodies shows whether a stage's
cost per event grows with the data.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from benchmarks import payloads
from benchmarks.machine import machine_info
from benchmarks.procstat import machine_busy_seconds
from benchmarks.servers import postgres_database
from storeloop import migrate
from storeloop.app import create_app
from storeloop.config import Settings
from storeloop.db import create_db_engine, session_scope
from storeloop.runtime import Runtime
from storeloop.workspaces.service import KeyKind, create_api_key, create_workspace

RESULTS = Path(__file__).resolve().parent / "results"


def _stage(drain: Any) -> dict[str, float]:
    """Wall time, this process's CPU and the rest of the machine's CPU (on a quiet machine with
    PostgreSQL: mostly the database server's work for the stage)."""
    started, cpu = time.perf_counter(), time.process_time()
    busy_before, _ = machine_busy_seconds()
    while drain():
        pass
    own = time.process_time() - cpu
    busy_after, _ = machine_busy_seconds()
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(own, 2),
        "other_cpu_seconds": round(max(busy_after - busy_before - own, 0.0), 2),
    }


def run(database_url: str, data_dir: Path, bodies: int) -> dict[str, Any]:
    engine = create_db_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    settings = Settings(
        database_url=database_url,
        data_dir=data_dir,
        master_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        secret_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        inprocess_worker=False,
        rate_limit="1000000/second",
    )
    runtime = Runtime(settings)
    runtime.start()
    try:
        with session_scope(runtime.session_factory) as session:
            workspace = create_workspace(session, runtime.keyring.master_key, "Bench", "bench")
            write_key = create_api_key(session, workspace.id, KeyKind.WRITE, "bench").plaintext
        auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
        headers = {"Authorization": auth, "Content-Type": "application/json"}
        with TestClient(create_app(runtime=runtime)) as client:
            for body in payloads.batch_bodies(bodies):
                response = client.post("/v1/batch", content=body, headers=headers)
                response.raise_for_status()
        runtime.writer.stop()
        events = bodies * 100
        processor = _stage(runtime.processor.drain)
        derivations = _stage(runtime.derivations.drain)
    finally:
        runtime.close()
    for stage in (processor, derivations):
        stage["events_per_s"] = round(events / stage["seconds"]) if stage["seconds"] else 0
    return {"events": events, "processor": processor, "derivations": derivations}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--bodies", type=int, nargs="+", default=[500, 1000])
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    runs = []
    for bodies in args.bodies:
        with ExitStack() as stack:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            if args.backend == "sqlite":
                url = f"sqlite:///{data_dir / 'storeloop.db'}"
            else:
                url = stack.enter_context(postgres_database(args.postgres_url))
            result = run(url, data_dir, bodies)
        runs.append(result)
        stages = "; ".join(
            f"{name} {stage['seconds']} s ({stage['events_per_s']:,}/s, CPU s"
            f" {stage['cpu_seconds']} own + {stage['other_cpu_seconds']} rest of the machine)"
            for name, stage in (
                ("processor", result["processor"]),
                ("derivations", result["derivations"]),
            )
        )
        print(f"{args.backend}, {result['events']:,} events: {stages}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"pipeline-{args.backend}.json"
    path.write_text(json.dumps({"machine": machine_info(), "runs": runs}, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
