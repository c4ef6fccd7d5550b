"""What a job sees of the worker's environment, and which OS user it runs as."""

from __future__ import annotations

import os
import pwd

import pytest

from jobyard.models import JobSpec
from jobyard.runner.accounts import AccountError, account
from jobyard.runner.environment import ALLOWED, NAME_PATTERN, JobEnvironment, identity

SERVER = {
    b"PATH": b"/usr/local/bin:/usr/bin:/bin",
    b"HOME": b"/root",
    b"LANG": b"C.UTF-8",
    b"LC_ALL": b"C.UTF-8",
    b"LC_TIME": b"de_DE.UTF-8",
    b"TZ": b"Europe/Berlin",
    b"JOBYARD_DATABASE_URL": b"postgresql://jobs:secret@db/jobs",
    b"SMTP_PASSWORD": b"hunter2",
    b"HOOK_SECRET": b"s3cr3t",
    b"PYTHONPATH": b"/srv/app",
    b"AWS_ACCESS_KEY_ID": b"AKIA",
    b"AWS_REGION": b"eu-central-1",
    b"LCX": b"not a locale variable",
}


def test_only_the_allowed_variables_pass() -> None:
    base = JobEnvironment(environ=SERVER).base
    assert base == {
        b"PATH": b"/usr/local/bin:/usr/bin:/bin",
        b"HOME": b"/root",
        b"LANG": b"C.UTF-8",
        b"LC_ALL": b"C.UTF-8",
        b"LC_TIME": b"de_DE.UTF-8",
        b"TZ": b"Europe/Berlin",
    }


def test_pass_env_adds_names_and_prefixes() -> None:
    base = JobEnvironment(["PYTHONPATH", "AWS_*", "NOT_SET"], environ=SERVER).base
    assert base[b"PYTHONPATH"] == b"/srv/app"
    assert base[b"AWS_ACCESS_KEY_ID"] == b"AKIA"
    assert base[b"AWS_REGION"] == b"eu-central-1"
    assert b"NOT_SET" not in base
    assert b"SMTP_PASSWORD" not in base
    assert b"JOBYARD_DATABASE_URL" not in base


def test_a_jobs_environment_layers_its_parts() -> None:
    environment = JobEnvironment(environ=SERVER)
    person = {"HOME": "/home/etl", "USER": "etl", "LOGNAME": "etl"}
    own = {"LANG": "fr_FR.UTF-8", "USER": "typed", "JOBYARD_JOB_ID": "forged", "FOO": "bar"}
    env = environment.for_job(42, "w:42:1", own, person)
    assert env[b"PATH"] == SERVER[b"PATH"]  # the worker's
    assert env[b"HOME"] == b"/home/etl"  # the user's over the worker's
    assert env[b"USER"] == b"typed"  # the type's over the user's
    assert env[b"LANG"] == b"fr_FR.UTF-8"  # the type's over the worker's
    assert env[b"FOO"] == b"bar"
    assert env[b"JOBYARD_JOB_ID"] == b"42"  # the identity over everything
    assert env[b"JOBYARD_JOB_TOKEN"] == b"w:42:1"
    assert b"SMTP_PASSWORD" not in env
    assert environment.base == JobEnvironment(environ=SERVER).base  # not changed by a job


def test_the_process_environment_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBYARD_SECRET_PROBE", "leak")
    monkeypatch.setenv("LC_MESSAGES", "C")
    environment = JobEnvironment()
    assert environment.base.get(b"LC_MESSAGES") == b"C"
    assert b"JOBYARD_SECRET_PROBE" not in environment.base
    monkeypatch.setenv("LC_MESSAGES", "later")
    assert environment.base[b"LC_MESSAGES"] == b"C"


def test_identity() -> None:
    assert identity(7, "tok") == {
        "JOBYARD_JOB_ID": "7",
        "JOBYARD_JOB_TOKEN": "tok",
        "JOBYARD_WORKER_PID": str(os.getpid()),  # the worker that starts the job
    }


@pytest.mark.parametrize("name", [*ALLOWED, "MY_VAR", "AWS_*", "_x", "A1"])
def test_pass_env_names(name: str) -> None:
    assert NAME_PATTERN.fullmatch(name)


@pytest.mark.parametrize("name", ["*", "1ABC", "A-B", "A*B", "", "A B", "A=B"])
def test_not_pass_env_names(name: str) -> None:
    assert not NAME_PATTERN.fullmatch(name)


def test_a_spec_keeps_its_user() -> None:
    spec = JobSpec(argv=["id", "-u"], user="etl")
    assert JobSpec.from_dict(spec.to_dict()) == spec
    assert JobSpec.from_dict({"argv": ["true"]}).user is None  # specs stored before it


def test_an_unknown_user_cannot_run_jobs() -> None:
    with pytest.raises(AccountError, match="user 'no-such-user-here' does not exist on this host"):
        account("no-such-user-here")


def test_our_own_user_needs_no_switch() -> None:
    me = pwd.getpwuid(os.geteuid())
    mine = account(me.pw_name)
    assert (mine.uid, mine.switch, mine.popen_args()) == (me.pw_uid, False, {})
    assert mine.variables() == {"HOME": me.pw_dir, "USER": me.pw_name, "LOGNAME": me.pw_name}


@pytest.mark.skipif(os.geteuid() != 0, reason="only root switches users")
def test_root_switches_to_another_user() -> None:
    nobody = pwd.getpwnam("nobody")
    other = account("nobody")
    assert other.switch
    assert other.popen_args() == {
        "user": nobody.pw_uid,
        "group": nobody.pw_gid,
        "extra_groups": list(os.getgrouplist("nobody", nobody.pw_gid)),
    }
