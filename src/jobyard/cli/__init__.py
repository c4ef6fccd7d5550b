"""The ``jobyard`` command line (Typer).

Owns the commands: server processes (:mod:`.app`: serve, worker, migrate, with
their settings in :mod:`.settings`), users on the database (:mod:`.users`), and
client commands over HTTP (jobs, logs, watch, types, workflows, workers,
notifications, whoami, tokens, audit in :mod:`.access`; login and logout in
:mod:`.session`), their shared options (:mod:`.common`), their credentials
(:mod:`.credentials`) and rendering (:mod:`.render`, :mod:`.output`). Client
commands import only Typer, Rich and :mod:`jobyard.client`; server code is
imported inside the commands that need it, so ``jobyard --help`` starts fast.
"""

from __future__ import annotations

from jobyard.cli.app import main

__all__ = ["main"]
