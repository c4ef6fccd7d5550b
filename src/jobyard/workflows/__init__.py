"""Workflows: named DAGs of jobs from ``jobyard.yaml``, and their runs.

Owns the frozen definitions (:mod:`.spec`), their parsing and field checks
against the job types (:mod:`.parse`, :mod:`.fields`), graph algorithms that
are iterative and O(nodes + edges) (:mod:`.graph`), what a run of a node needs
(:mod:`.dag`), and starting, stopping and resuming runs (:mod:`.runs`). All but
``runs`` are pure; ``runs`` goes through the job manager and the store. Never
imports the API or the CLI.
"""
