"""The network between a worker and PostgreSQL cut (packets vanish, no reset), then restored.

The worker runs in a network namespace of its own, joined to the host by a
veth pair; a private PostgreSQL listens on the host's end. Taking the host's
end down makes every packet vanish: no reset, no error, the worst case, where
a connection without timeouts waits for the kernel's ~15 minutes of
retransmits. The link stays down past the lease, so the scheduler (on the
API-only node, on the host) hands the worker's job to a spare worker.

Expected: the job runs once more (attempt 2) and ends once; the cut-off worker
is not stuck (its statements fail within the connection's timeouts), stops the
processes of the job whose lease it could not renew while still cut off, writes
nothing for that attempt, and works again once the link is back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import uuid4

import pytest

from jobyard.clock import utcnow
from tests.cluster import Cluster, WorkerProcess
from tests.faults.invariants import check_jobs, holders
from tests.harness import wait_for
from tests.pgprivate import private_postgres_server

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ENV = {"JOBYARD_LEASE_TIMEOUT": "3", "JOBYARD_HEARTBEAT_INTERVAL": "0.5"}
# The cut-off worker's connection timeouts, shorter than the defaults for a short test.
QUICK = (
    "connect_timeout=2&tcp_user_timeout=2000"
    "&keepalives_idle=1&keepalives_interval=1&keepalives_count=2"
)


@dataclass(frozen=True)
class Namespace:
    """A network namespace joined to the host by a veth pair (``/30``)."""

    name: str
    host_link: str
    host_address: str
    address: str

    def run(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def cut(self) -> None:
        """Every packet between the two ends now vanishes (no reset, no error)."""
        ip("link", "set", self.host_link, "down")

    def restore(self) -> None:
        ip("link", "set", self.host_link, "up")


def ip(*argv: str) -> None:
    done = subprocess.run(["ip", *argv], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"ip {' '.join(argv)}: {done.stderr}"


def cannot_make_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no ip command (iproute2)"
    return None


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    if reason := cannot_make_namespaces():
        pytest.skip(reason)
    tag = uuid4().hex[:6]
    octet = int(tag[:2], 16)  # a /30 of 10.231.0.0/16 unlikely to be taken by another run
    third = int(tag[2:4], 16) & 0xFC
    net = Namespace(
        f"jy-{tag}", f"jyh{tag}", f"10.231.{octet}.{third + 1}", f"10.231.{octet}.{third + 2}"
    )
    made = subprocess.run(["ip", "netns", "add", net.name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {made.stderr.strip()}")
    try:
        inner = f"jyn{tag}"
        ip("link", "add", net.host_link, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", net.name)
        ip("addr", "add", f"{net.host_address}/30", "dev", net.host_link)
        ip("link", "set", net.host_link, "up")
        ip("netns", "exec", net.name, "ip", "addr", "add", f"{net.address}/30", "dev", inner)
        ip("netns", "exec", net.name, "ip", "link", "set", inner, "up")
        ip("netns", "exec", net.name, "ip", "link", "set", "lo", "up")
        yield net
    finally:
        subprocess.run(["ip", "link", "del", net.host_link], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", net.name], capture_output=True, check=False)


@pytest.fixture
def cluster(namespace: Namespace, tmp_path: Path) -> Iterator[tuple[Cluster, str]]:
    """An API-only node on the host, no worker yet; the URL for a worker in the namespace."""
    with (
        private_postgres_server((namespace.host_address,), (f"{namespace.address}/32",)) as pg,
        Cluster(pg.url, tmp_path, workers=0, env=ENV) as running,
    ):
        yield running, f"{pg.url_at(namespace.host_address)}?{QUICK}"


#: A transaction of a worker's, as the cut finds it between two of its statements (its
#: lease renewal's, say): it holds the job's row, and only the server can end it.
HOLD_THE_ROW = """
import sys
from sqlalchemy import text
from jobyard.store.engine import make_engine, normalize_url
with make_engine(normalize_url(sys.argv[1])).connect() as conn:
    conn.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": int(sys.argv[2])})
    print("holding", flush=True)
    sys.stdin.read()
"""


def gated_job_on_a_worker_inside(
    nodes: Cluster, url: str, namespace: Namespace, tmp_path: Path, tag: str
) -> tuple[WorkerProcess, int]:
    """A worker in the namespace, running a job that waits for ``tmp_path / "gate"``."""
    cut_off = WorkerProcess(
        f"cut-{tag}", url, nodes.workdir, env=nodes.env, wrapper=namespace.run()
    )
    nodes.procs.append(cut_off.start())
    nodes.wait_registered()
    job_id = nodes.api.submit("gate", args={"path": str(tmp_path / "gate")})["id"]
    wait_for(lambda: runs_on(nodes, job_id, cut_off, 1), what="the job to run")
    return cut_off, job_id


def runs_on(nodes: Cluster, job_id: int, worker: WorkerProcess, attempt: int) -> bool:
    job = nodes.api.job(job_id)
    return job["state"] == "running" and job["worker"] == worker.name and job["attempt"] == attempt


def heartbeat_after(nodes: Cluster, worker: WorkerProcess, moment: datetime) -> bool:
    info = nodes.store.workers.get_worker(worker.name)
    return info is not None and info.heartbeat_at > moment


def test_a_worker_cut_off_from_postgres_gives_its_job_up_and_comes_back(
    cluster: tuple[Cluster, str], namespace: Namespace, tmp_path: Path
) -> None:
    tag = uuid4().hex[:8]
    nodes, url = cluster
    cut_off, job_id = gated_job_on_a_worker_inside(nodes, url, namespace, tmp_path, tag)
    gate = tmp_path / "gate"
    first = f"{cut_off.name}:{job_id}:1"
    wait_for(lambda: first in holders([first]).values(), what="the first attempt's processes")

    namespace.cut()
    try:
        spare = nodes.add_worker(f"spare-{tag}")
        wait_for(lambda: runs_on(nodes, job_id, spare, 2), timeout=60, what="the job retried")
        # Still cut off, the worker stops the attempt whose lease it could not renew.
        wait_for(lambda: not holders([first]), timeout=30, what="the lost attempt stopped")
        assert cut_off.alive, cut_off.log()
        # Not stuck in a statement: its ticks fail within the connection's timeouts.
        wait_for(lambda: "worker tick failed" in cut_off.log(), timeout=30, what="a failed tick")
    finally:
        namespace.restore()
    restored = utcnow()

    wait_for(lambda: heartbeat_after(nodes, cut_off, restored), timeout=60, what="it reconnects")
    gate.touch()
    history = check_jobs(nodes.store, [job_id])
    job = nodes.api.job(job_id)
    assert (job["state"], job["worker"], job["attempt"]) == ("succeeded", spare.name, 2)
    assert [e.data["attempt"] for e in history[job_id] if e.claim] == [1, 2]
    printed = [line["line"] for line in nodes.api.logs(job_id) if line["stream"] == "stdout"]
    assert printed == ["through"]  # once: the lost attempt wrote nothing

    # Back at work: with the spare gone, the next job is the cut-off worker's.
    assert spare.terminate(timeout=30) == 0
    after = nodes.api.submit("nap", args={"seconds": 0.1})["id"]
    done = nodes.api.wait_state(after, "succeeded")
    assert done["worker"] == cut_off.name
    assert cut_off.alive, cut_off.log()


def test_a_transaction_cut_off_midway_does_not_hold_the_job_s_row(
    cluster: tuple[Cluster, str], namespace: Namespace, tmp_path: Path
) -> None:
    """The server ends a session whose client vanished inside a transaction (the
    keep-alives its connection asks of the server): until then the scheduler's recovery
    of the job waits on the row, on a default server for two hours."""
    tag = uuid4().hex[:8]
    nodes, url = cluster
    _, job_id = gated_job_on_a_worker_inside(nodes, url, namespace, tmp_path, tag)
    gate = tmp_path / "gate"
    with subprocess.Popen(
        namespace.run(sys.executable, "-c", HOLD_THE_ROW, url, str(job_id)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None
        try:
            assert holder.stdout.readline().strip() == "holding"
            namespace.cut()
            spare = nodes.add_worker(f"spare-{tag}")
            wait_for(lambda: runs_on(nodes, job_id, spare, 2), timeout=60, what="the job retried")
        finally:
            namespace.restore()
            holder.kill()
    gate.touch()
    job = nodes.api.wait_state(job_id, "succeeded")
    assert (job["worker"], job["attempt"]) == (spare.name, 2)
