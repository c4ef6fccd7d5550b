"""``python -m bench.compare --rounds 3 --jobs 2000 [--systems ...] [--smoke]``."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import psutil
import psycopg

from bench.compare import procs
from bench.compare.competitors import Celery, Dramatiq, Huey, Procrastinate, Rq
from bench.compare.extras import jobyard_extras, spawn_floor
from bench.compare.jobyard import JobyardPostgres, JobyardSqlite
from bench.compare.report import write
from bench.compare.stamps import Stamps
from bench.compare.system import PG_ADMIN, REDIS_HOST, REDIS_PORT, System
from bench.compare.workload import Keys, Plan, one_round

SYSTEMS: dict[str, type[System]] = {
    cls.name: cls
    for cls in (JobyardSqlite, JobyardPostgres, Celery, Rq, Dramatiq, Huey, Procrastinate)
}
PACKAGES = ("celery", "rq", "dramatiq", "huey", "procrastinate", "redis", "psycopg")
HERE = Path(__file__).resolve().parent.parent


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2000, help="per throughput/enqueue phase")
    parser.add_argument("--latency-jobs", type=int, help="default: a tenth of --jobs, ≥ 10")
    parser.add_argument("--systems", nargs="+", choices=sorted(SYSTEMS), help="default: all")
    parser.add_argument("--smoke", action="store_true", help="20 jobs, 1 round, seconds long")
    parser.add_argument("--out", type=Path, default=HERE, help="where RESULTS.md and JSON go")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.jobs = 1, 20
        args.systems = args.systems or [
            name for name, cls in SYSTEMS.items() if cls.installed() and name != "jobyard-postgres"
        ]
    else:
        args.systems = args.systems or list(SYSTEMS)
        missing = [name for name in args.systems if not SYSTEMS[name].installed()]
        if missing:
            parser.error(f"not installed: {', '.join(missing)} (pip install -e '.[bench]')")
    args.latency_jobs = args.latency_jobs or max(10, args.jobs // 10)
    if args.latency_jobs >= args.jobs:
        parser.error("--latency-jobs must be below --jobs")
    return args


def server_versions() -> tuple[str, str]:
    """PostgreSQL's and Redis's versions ("not reachable" when a smoke run has neither)."""
    postgres = redis_version = "not reachable"
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            postgres = str(row[0]) if row else "?"
    except psycopg.Error:
        pass
    try:
        import redis

        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=3)
        try:
            redis_version = str(client.info("server")["redis_version"])
        finally:
            client.close()
    except Exception:  # not installed (the test extra) or not running
        pass
    return postgres, redis_version


def machine() -> dict[str, Any]:
    postgres, redis_version = server_versions()
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "ram_gib": psutil.virtual_memory().total / 2**30,
        "python": platform.python_version(),
        "postgres": postgres,
        "redis": redis_version,
        "packages": packages,
        "jobyard": f"{metadata.version('jobyard')} at {commit or '?'}",
        "load_before": load(),
    }


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = Plan(args.jobs, args.latency_jobs)
    if args.smoke:
        plan.control_rounds, plan.kills = 2, 1
    command = "python -m bench.compare " + shlex.join(sys.argv[1:])
    result: dict[str, Any] = {
        "command": command.strip(),
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "rounds": args.rounds,
        "jobs": args.jobs,
        "latency_jobs": args.latency_jobs,
        "systems": args.systems,
        "anchors": [name for name in args.systems if SYSTEMS[name].anchor],
        "shapes": {name: SYSTEMS[name].shape for name in args.systems},
        "results": [],
        "spawn_floor_per_s": [],
    }
    stamps, keys = Stamps(), Keys()
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        systems = [SYSTEMS[name](Path(tmp), stamps.address) for name in args.systems]
        try:
            for round_ in range(args.rounds):
                shift = round_ % len(systems)
                for system in systems[shift:] + systems[:shift]:
                    result["results"].append(measure(system, round_, plan, stamps, keys))
                if any(not s.anchor for s in systems):
                    result["spawn_floor_per_s"].append(spawn_floor(max(args.jobs, 200)))
        finally:
            procs.stop_all()
            for system in systems:
                system.cleanup()
            stamps.close()
    result["machine"]["load_after"] = load()
    return result


def measure(system: System, round_: int, plan: Plan, stamps: Stamps, keys: Keys) -> dict[str, Any]:
    print(f"round {round_ + 1}: {system.name} …", file=sys.stderr, flush=True)
    started = time.monotonic()
    extra = None if system.anchor else jobyard_extras
    try:
        figures = one_round(system, stamps, keys, plan, extra)
    except Exception as error:  # one system failing must not lose the others' figures
        traceback.print_exc()
        figures = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
    figures |= {"system": system.name, "round": round_ + 1}
    figures["seconds"] = time.monotonic() - started
    print(f"  {json.dumps(figures, default=str)}", file=sys.stderr, flush=True)
    return figures


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, _interrupted)
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare-results.json").write_text(json.dumps(result, indent=1) + "\n")
    write(result, args.out / "RESULTS.md")
    print(f"wrote {args.out / 'RESULTS.md'} and compare-results.json", file=sys.stderr)
    return 1 if any("error" in r for r in result["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
