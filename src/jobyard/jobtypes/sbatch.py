"""Which extra ``sbatch`` options a job type may give, checked by their full names.

``sbatch`` reads its options with ``getopt_long``, which takes any unique prefix of a
long option (``--out=`` is ``--output=``, ``--hol`` is ``--hold``): a check of the
names as written would let a reserved option through. So each name is expanded to
the one option of Slurm it stands for, then checked; an unknown or ambiguous name is
refused (a name sbatch does not know would fail every submission anyway).
"""

from __future__ import annotations

# sbatch's long options (Slurm 22.05 and the few newer ones types use).
_OPTION_NAMES = """
    account acctg-freq array batch bb bbf begin chdir cluster-constraint clusters
    comment constraint container contiguous core-spec cores-per-socket cpu-freq
    cpus-per-gpu cpus-per-task deadline delay-boot dependency distribution error exclude
    exclusive export export-file extra extra-node-info get-user-env gid gpu-bind
    gpu-freq gpus gpus-per-node gpus-per-socket gpus-per-task gres gres-flags help hint
    hold ignore-pbs input job-name kill-on-invalid-dep licenses mail-type mail-user
    mcs-label mem mem-bind mem-per-cpu mem-per-gpu mincpus network nice no-kill
    no-requeue nodefile nodelist nodes ntasks ntasks-per-core ntasks-per-gpu
    ntasks-per-node ntasks-per-socket open-mode output overcommit oversubscribe parsable
    partition power prefer priority profile propagate qos quiet reboot requeue
    reservation signal sockets-per-node spread-job switches test-only thread-spec
    threads-per-core time time-min tmp tres-per-task uid usage use-min-nodes verbose
    version wait wait-all-nodes wckey wrap
"""
SBATCH_OPTIONS = frozenset(_OPTION_NAMES.split())

# What jobyard sets itself, or what would detach the job from it: the output files,
# the identity, the environment (the script carries it), the user, arrays (one job per
# attempt), other clusters (squeue would not see the job), and runs that never start.
_RESERVED_NAMES = """
    output error input parsable job-name comment hold wrap chdir requeue no-requeue
    array export export-file get-user-env uid gid clusters test-only wait usage help
    version
"""
RESERVED = frozenset(_RESERVED_NAMES.split())


class OptionError(ValueError):
    """An option a job type may not give to sbatch."""


def full_name(name: str) -> str:
    """The sbatch option that ``name`` (without ``--``) stands for, as getopt reads it."""
    if name in SBATCH_OPTIONS:
        return name
    matches = sorted(option for option in SBATCH_OPTIONS if option.startswith(name))
    if not matches:
        raise OptionError(f"--{name} is not an sbatch option")
    if len(matches) > 1:
        raise OptionError(f"--{name} is ambiguous: " + ", ".join(f"--{m}" for m in matches))
    return matches[0]


def checked(option: str) -> str:
    """``option`` (``--name`` or ``--name=value``) with its full name, or OptionError."""
    name, equals, value = option[2:].partition("=")
    full = full_name(name)
    if full in RESERVED:
        raise OptionError(f"{option!r}: --{full} is set by jobyard or not allowed")
    return f"--{full}{equals}{value}"
