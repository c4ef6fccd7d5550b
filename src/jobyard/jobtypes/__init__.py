"""Job types: named, validated templates for jobs, and the catalogue that holds them.

Owns the definition of a type (:mod:`.spec`: command, Python target or shell,
queue, retries, budgets), its parameters as JSON Schema 2020-12 (:mod:`.params`),
per-element argv templates that never pass through a shell (:mod:`.argv`), and
the catalogue of types from ``jobyard.yaml`` and from the API (:mod:`.catalog`).
``spec``, ``params`` and ``argv`` are pure and import only the domain modules
(``models``, ``errors``, ``durations``, ``routing``); ``catalog`` alone talks to
the store.
"""
