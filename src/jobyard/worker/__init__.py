"""The worker: claims jobs and carries out one attempt of each.

Owns the claim loop with its leases, heartbeats, wake-ups and drains
(:mod:`.loop`), one attempt of one job from claim to stored end, with its
control requests, output batching, log cap and samples (:mod:`.attempt`), what
dead workers of its host left, their jobs recovered or adopted and their
processes killed (:mod:`.orphans`), and the pure budget watch (:mod:`.sla`).
Imports the runner to execute and the store to report; never the API or the CLI.
"""
