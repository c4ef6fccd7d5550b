"""Notifications: channels, the messages they carry, and their durable outbox.

Owns the channel and rule definitions of ``jobyard.yaml`` (:mod:`.channels`, with the
field types of :mod:`.fields`), rendering a message from an event (:mod:`.message`), an
email's subject, text and HTML from templates (:mod:`.mail`) and a channel's body from it
(:mod:`.formats`: JSON, Slack, Teams or a Jinja2 template), all in one Jinja2 sandbox
(:mod:`.jinja`), sending by SMTP or signed webhook (:mod:`.send`) or to a RabbitMQ exchange
(:mod:`.amqp`), turning events into pending messages exactly once (:mod:`.notifier`), and
delivering them with retries (:mod:`.dispatch`), both run by the leader's loop
(:mod:`.outbox`). Failures are recorded, never raised into a worker. May import the
domain modules and the store; never the API.
"""
