"""The executor router: the Slurm package stays unloaded until a Slurm job needs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def test_a_worker_without_slurm_jobs_never_imports_the_slurm_package() -> None:
    code = (
        "import sys, jobyard.node, jobyard.worker.loop, jobyard.runner.executors, jobyard.config\n"
        "print(sorted(m for m in sys.modules if m.startswith('jobyard.runner.slurm')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_slurm_executor_is_made_once_for_the_first_slurm_job() -> None:
    code = (
        "import sys\n"
        "from jobyard.runner.executors import Executors\n"
        "from jobyard.runner.local import Runner\n"
        "runner = Runner(python_pool=0)\n"
        "executors = Executors(runner, install='test')\n"
        "print('jobyard.runner.slurm' in sys.modules)\n"
        "print(executors.slurm is executors.slurm, executors.slurm.install)\n"
        "executors.close(1.0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["False", "True test"]


def test_an_installation_is_its_database_whatever_the_url_says_of_syncing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Slurm executor finds an earlier attempt's job by the installation's name: two
    processes on one SQLite file, or one restarted with another ``synchronous``, share it."""
    from jobyard.store.engine import installation

    monkeypatch.chdir(tmp_path)
    names = {
        installation(url)
        for url in (
            f"sqlite:///{tmp_path}/jobs.db",
            "sqlite:///./jobs.db?synchronous=full",
            "sqlite:///jobs.db?synchronous=normal",
        )
    }
    assert len(names) == 1
    assert installation("sqlite:///other.db") not in names
    same_server = {installation(f"postgresql://u:{pw}@db/jobs") for pw in ("a", "b")}
    assert len(same_server) == 1  # nor by the password


@pytest.mark.parametrize(
    ("spellings", "others"),
    [
        (
            [
                "postgresql://jobs@db/jobs",
                "postgres://jobs@db/jobs",
                "postgresql://jobs@DB:5432/jobs",
                "postgresql+psycopg://worker:secret@db/jobs",
                "postgresql://jobs@db/jobs?connect_timeout=5",
            ],
            ["postgresql://jobs@db/other", "postgresql://jobs@db:5433/jobs"],
        ),
        (
            [
                "mysql://jobs@db/jobs",
                "mariadb://jobs@db/jobs",
                "mariadb+pymysql://jobs@db:3306/jobs",
                "mysql+pymysql://jobs@db:3306/jobs?read_timeout=20&write_timeout=20",
            ],
            ["mysql://jobs@db2/jobs", "postgresql://jobs@db/jobs"],
        ),
    ],
)
def test_an_installation_is_its_database_however_a_node_spells_the_url(
    spellings: list[str], others: list[str]
) -> None:
    """A worker whose URL had a driver, a default port or an option the others' had not
    did not know an earlier attempt's Slurm job as this installation's: it ran beside it."""
    from jobyard.store.engine import installation

    names = {installation(url) for url in spellings}
    assert len(names) == 1
    assert not names & {installation(url) for url in others}
