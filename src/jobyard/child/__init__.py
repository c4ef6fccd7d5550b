"""The pre-started Python child: ``python -m jobyard.child <message-fd>``.

Owns the child's side of the pool protocol (:mod:`.main`), running one job's
function or class with its hooks (:mod:`.pyjob`), and measuring and cleaning up
after each job (:mod:`.jobend`). It starts before any job is known, so it
imports nothing heavy: the standard library, psutil, the job author's
:mod:`jobyard.context` and :mod:`jobyard.runner.procs`; never the store, the
API, pydantic or SQLAlchemy.
"""
