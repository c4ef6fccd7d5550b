"""Schedules: when jobs and workflow runs fire, and the scheduler that fires them.

Owns the definitions and their validation (:mod:`.spec`), fire times for cron
in a time zone, intervals and one-off times (:mod:`.times`), the pure decisions
of one pass (:mod:`.due`), the schedules stored beside the configured ones
(:mod:`.book`), firing each time exactly once (:mod:`.firing`), the scheduler
loop that also releases due jobs and recovers expired leases
(:mod:`.scheduler`), and the election of the one process that leads
(:mod:`.leader`). ``spec``, ``times`` and ``due`` are pure (time is a
parameter); the rest may import the manager and the store, never the API.
"""
