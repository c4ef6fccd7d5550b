"""Side-by-side benchmark: jobyard against Celery, RQ, Dramatiq, Huey and Procrastinate.

``python -m bench.compare --rounds 3 --jobs 2000`` runs the same workload on every
system in one run, with interleaved rounds (each round runs every system once, in a
rotated order), and writes the generated section of ``bench/RESULTS.md`` and the raw
figures in ``bench/compare-results.json``.

Owns: the job body every system runs (:mod:`.body`), the collector of its stamps
(:mod:`.stamps`), the processes (:mod:`.procs`), one adapter per system
(:mod:`.jobyard`, :mod:`.competitors`, with the competitors' app modules under
:mod:`.apps`), the phases (:mod:`.workload`, :mod:`.extras`) and the report
(:mod:`.report`). Imports nothing of jobyard but its HTTP API and its database.
"""
