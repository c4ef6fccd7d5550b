"""The runner: executes one job as processes on this host.

Owns the contract between worker and runner (:mod:`.contract`: a ``Sink`` in,
an ``Execution`` and a ``Result`` out), command jobs spawned directly without a
shell (:mod:`.command`), Python jobs on pre-started children (:mod:`.python`,
:mod:`.pool`, :mod:`.handle`), output pumps and the ``##jobyard`` line protocol
(:mod:`.output`, :mod:`.protocol`), process groups and their measurement
(:mod:`.procs`), what a job sees of the environment and which user it runs
as (:mod:`.environment`, :mod:`.accounts`), and the façade the worker calls
(:mod:`.local`). Imports only the domain modules (``models``) and the standard
library, psutil among the rest; never the store, the API or the worker.
"""
