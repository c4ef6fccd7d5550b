"""``jobyard prune`` and ``jobyard backup``: upkeep of the database itself, no server needed.

``prune`` applies the configuration's ``retention`` once, as the scheduler
leader does in the background, and prints per kind of row how many went (or,
with ``--dry-run``, would go). ``backup`` copies a SQLite database online, or
runs the dump tool of a PostgreSQL or MariaDB server (docs/backup.md).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from jobyard.cli.common import JsonOpt, fail, print_json
from jobyard.cli.settings import (
    ConfigOpt,
    DatabaseOpt,
    check_database,
    load_settings,
    open_database,
    read_settings,
)

PANEL = "Upkeep (on the database)"
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Count what would go; remove nothing.")]
PathArg = Annotated[Path, typer.Argument(metavar="PATH", help="Where the backup goes (new file).")]
PrintOpt = Annotated[
    bool,
    typer.Option(
        "--print", help="PostgreSQL/MariaDB: print the dump command instead of running it."
    ),
]


def prune(
    dry_run: DryRunOpt = False,
    database_url: DatabaseOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove what the configuration's `retention` no longer keeps, once (docs/retention.md)."""
    from jobyard.clock import utcnow
    from jobyard.retention.pruner import ORDER, Pruner

    settings, cfg = load_settings(
        {"database_url": database_url, "config": config}, check_secrets=False
    )
    store = open_database(settings.database_url)
    try:
        store.migrate()
        pruner = Pruner(store.retention, cfg.retention, pause=0, max_batches=None)
        if dry_run:
            counts = pruner.preview(utcnow())
        else:
            tally = pruner.run_once(utcnow())
            counts = {k: None if cfg.retention.cutoff(k, utcnow()) is None else tally.rows[k]
                      for k in ORDER}  # fmt: skip
    finally:
        store.close()
    ages = cfg.retention.describe()
    if as_json:
        print_json({"dry_run": dry_run, "ages": ages, "rows": counts})
        return
    verb = "would go" if dry_run else "removed"
    for kind in ORDER:
        count = counts[kind]
        shown = "kept for ever" if count is None else f"{count} {verb} (older than {ages[kind]})"
        typer.echo(f"{kind:<14}{shown}")


def backup(
    path: PathArg,
    database_url: DatabaseOpt = None,
    print_only: PrintOpt = False,
) -> None:
    """Back up the database to PATH: SQLite online (the server may run), else its dump tool."""
    from jobyard.store import backup as store_backup

    settings = read_settings({"database_url": database_url})
    url = settings.database_url
    source = store_backup.sqlite_path(url)
    if source is not None:
        try:
            size = store_backup.backup_sqlite(source, path)
        except OSError as exc:
            fail(str(exc))
        typer.echo(f"backed up {source} to {path} ({size} bytes)")
        return
    try:
        command = store_backup.dump_command(url, path)
    except ValueError as exc:
        fail(str(exc))
    if print_only or shutil.which(command.argv[0]) is None:
        typer.echo(command.shown())
        if not print_only:
            fail(f"{command.argv[0]} is not installed here: run the command above where it is", 1)
        return
    check_database(url)  # a server that does not answer: one line, not the tool's output
    try:
        store_backup.claim_target(path)  # the dump tools would overwrite it
    except OSError as exc:  # it exists, no such directory, no permission
        fail(str(exc))
    done = subprocess.run(command.argv, env=store_backup.dump_environment(command), check=False)
    if done.returncode != 0:
        path.unlink(missing_ok=True)  # made above: a failed dump leaves nothing in the way
        fail(f"{command.argv[0]} failed (exit {done.returncode})", 1)
    typer.echo(f"backed up to {path} with {command.argv[0]}")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=PANEL)(prune)
    app.command(rich_help_panel=PANEL)(backup)
