"""The ``jobyard`` command line (Typer).

Owns the commands: server processes (:mod:`.app`: serve, worker, migrate, with
their settings in :mod:`.settings`), users on the database (:mod:`.users`), and
client commands over HTTP (jobs, logs, watch, types, queues, schedules,
workflows, workers, notifications, whoami, tokens, audit in :mod:`.access`;
login and logout in :mod:`.session`), their shared options (:mod:`.common`),
credentials (:mod:`.credentials`), shell completion asked of the server
(:mod:`.complete`), list-or-show command groups (:mod:`.groups`), definitions
read from YAML files (:mod:`.definitions`) and rendering (:mod:`.render`,
:mod:`.tables`, :mod:`.output`, :mod:`.progress`). Client commands import only
Typer, Rich and :mod:`jobyard.client`; server code is imported inside the
commands that need it, so ``jobyard --help`` starts fast.
"""

from __future__ import annotations

from jobyard.cli.app import main

__all__ = ["main"]
