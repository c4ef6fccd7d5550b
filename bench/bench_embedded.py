"""The embedded server end to end: no-op Python jobs submitted one at a time, run, ended.

A ``jobyard serve --concurrency 2`` subprocess on a scratch SQLite database with the
side-by-side suite's job types; one client submits ``--jobs`` no-op Python jobs one
at a time over HTTP and waits until the last has ended. Prints jobs/s and the CPU of
the server and its children (the Python pool) per job. Quicker than ``bench.compare``
for an A/B of one change (run it alternately on both checkouts).

    .venv/bin/python bench/bench_embedded.py --jobs 2000
    .venv/bin/python bench/bench_embedded.py --jobs 2000 --profile /tmp/serve.txt  # py-spy
    .venv/bin/python bench/bench_embedded.py --jobs 1000 --synchronous full  # fsync a commit

``--profile`` samples the server (not its children) with py-spy while the measured
jobs run, only when a thread holds the GIL, and writes py-spy's raw collapsed
stacks (one line per stack and its sample count), with the sampler's own CPU
in the figure.

``--threads`` prints the server's CPU per job by thread (``bench/threads.py``).

``--syscalls`` counts the system calls of the server and its children with
``strace -c -f`` while the measured jobs run, and prints the main ones per job:
page reads and writes of SQLite (``pread64``, ``pwrite64``), its file locks
(``fcntl``), thread hand-offs and the GIL (``futex``). Counts, not times: strace
slows the process many times over, but what it counts does not depend on this
machine's noise.

    .venv/bin/python bench/bench_embedded.py --jobs 500 --syscalls
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.harness import ADMIN, free_port, wait_for

from bench.compare.jobyard import CONFIG
from bench.threads import per_thread, thread_times

ENDED = ("succeeded", "failed", "killed")


def cpu(proc: psutil.Process) -> float:
    """User + system seconds of ``proc`` and its live children."""
    total = sum(proc.cpu_times()[:2])
    return total + sum(sum(child.cpu_times()[:2]) for child in proc.children(recursive=True))


def submit_all(client: httpx.Client, count: int) -> None:
    """Submit ``count`` no-op jobs one at a time; return when the last has ended."""
    last = 0
    for key in range(count):
        answer = client.post("/api/v1/jobs", json={"type": "bench-noop", "args": {"key": key}})
        answer.raise_for_status()
        last = answer.json()["id"]
    wait_for(lambda: client.get(f"/api/v1/jobs/{last}").json()["state"] in ENDED, 300)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--profile", type=Path, help="py-spy raw stacks of the server, here")
    parser.add_argument("--syscalls", action="store_true", help="count system calls (strace)")
    parser.add_argument("--threads", action="store_true", help="server CPU per job by thread")
    parser.add_argument("--synchronous", choices=["normal", "full"], default="normal")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "jobyard.yaml"
        config.write_text(CONFIG)
        port = free_port()
        # The job body stamps a UDP datagram; here nobody listens for it.
        env = os.environ | {"JOBYARD_ADMIN_PASSWORD": ADMIN[1], "BENCH_STAMP_ADDR": "127.0.0.1:9"}
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)  # the job's module
        command = [sys.executable, "-m", "jobyard", "serve", "--port", str(port)]
        url = f"sqlite:///{tmp}/jobs.db?synchronous={args.synchronous}"
        command += ["--config", str(config), "--database-url", url]
        command += ["--log-level", "warning", "--concurrency", "2"]
        server = subprocess.Popen(command, env=env)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=ADMIN, timeout=60) as c:
                wait_for(lambda: _healthy(c), 60, what="the server")
                submit_all(c, 200)  # warm up: imports, the pool's children, caches
                proc = psutil.Process(server.pid)
                spy = _py_spy(server.pid, args.profile) if args.profile else None
                counts = Path(tmp) / "strace.txt"
                tracer = _strace(server.pid, counts) if args.syscalls else None
                threads = thread_times(server.pid) if args.threads else {}
                before, started = cpu(proc), time.perf_counter()
                submit_all(c, args.jobs)
                took, used = time.perf_counter() - started, cpu(proc) - before
                if args.threads:
                    print(per_thread(server.pid, threads, thread_times(server.pid), args.jobs))
                for sampler in (spy, tracer):
                    if sampler is not None:
                        sampler.send_signal(signal.SIGINT)  # both write their file then
                        sampler.wait(60)
                if tracer is not None:
                    print(_per_job(counts.read_text(), args.jobs))
        finally:
            server.terminate()
            server.wait(30)
    slowed = " (slowed by strace)" if args.syscalls else ""
    print(f"{args.jobs} jobs: {args.jobs / took:.0f} jobs/s, "
          f"server + children CPU {1000 * used / args.jobs:.2f} ms/job{slowed}")  # fmt: skip


def _py_spy(pid: int, out: Path, *, threads: bool = False) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` (returns once it says it samples); ``threads``: each stack
    rooted at its thread."""
    command = ["py-spy", "record", "--rate", "250", "--format", "raw", "--gil", "--nonblocking"]
    command += ["--threads"] if threads else []
    command += ["--pid", str(pid), "--output", str(out)]
    spy = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert spy.stdout is not None
    for line in spy.stdout:  # "py-spy> Sampling process 250 times a second. ..."
        if b"Sampling process" in line:
            return spy
    raise RuntimeError(f"py-spy exited with {spy.wait()}")


def _strace(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """``strace -c`` counting the system calls of ``pid``, its threads and children from
    now on (its messages go to a file: a pipe nobody reads could fill and stall it)."""
    said = out.with_suffix(".log")
    command = ["strace", "-c", "-f", "-p", str(pid), "-o", str(out)]
    with said.open("wb") as log:
        tracer = subprocess.Popen(command, stderr=log)
    # "strace: Process 250 attached with 9 threads"
    wait_for(lambda: b"attached" in said.read_bytes() or tracer.poll() is not None, 30)
    if tracer.poll() is not None:
        raise RuntimeError(f"strace exited with {tracer.returncode}: {said.read_text()}")
    return tracer


SYSCALLS = ("pread64", "pwrite64", "fcntl", "fdatasync", "futex", "epoll_pwait")


def _per_job(table: str, jobs: int) -> str:
    """The main lines of strace's summary ``table``, as calls per job."""
    calls = {}
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[-1] in SYSCALLS and fields[3].isdigit():
            calls[fields[-1]] = int(fields[3])
    return "system calls per job: " + ", ".join(
        f"{name} {calls.get(name, 0) / jobs:.1f}" for name in SYSCALLS
    )


def _healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


if __name__ == "__main__":
    main()
