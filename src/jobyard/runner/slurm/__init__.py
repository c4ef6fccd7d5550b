"""The Slurm executor: jobyard jobs run as Slurm batch jobs, with the same controls.

A job whose spec names ``executor: slurm`` is submitted with ``sbatch --parsable``
(:mod:`.batch`: a generated script that ``exec``s the argv, the options of the
type); its Slurm job id, output files and read offsets are kept on the job row
(``details``), so a worker that restarts adopts it. Pause and resume are
SIGSTOP/SIGCONT through ``scancel --signal --full`` (``hold``/``release`` before it
started), which a job's owner may send (``scontrol suspend`` is for operators), a stop
``scancel --signal=TERM`` then a cancel after the grace. One poll serves all jobs
of a worker (:mod:`.executor`), Slurm's commands run with timeouts and retries
(:mod:`.cli`), and how a Slurm end maps to a jobyard one is pure code (:mod:`.states`).
"""

from jobyard.runner.slurm.cli import SlurmCli, SlurmError
from jobyard.runner.slurm.executor import SlurmExecutor

__all__ = ["SlurmCli", "SlurmError", "SlurmExecutor"]
