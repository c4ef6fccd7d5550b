"""Events: the live hub that tails the durable event log and fans it out.

Owns the typed event records (one vocabulary for what happened to a job or a
workflow run), the hub that one API process keeps over the ``job_events``
table (:mod:`.hub`), waiting for ids that commit late (:mod:`.gaps`), and the
PostgreSQL LISTEN connection that wakes readers (:mod:`.listen`). May import
the domain modules and the store; never the API, which only renders these
events as Server-Sent Events.
"""
