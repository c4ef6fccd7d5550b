"""The HTTP API (FastAPI): a declared list of routers over one node's resources.

Owns the routes of ``/api/v1`` (one module a resource), the request and
response models (:mod:`.schemas`) and shared parameters (:mod:`.params`),
RFC 9457 problem details for every error (:mod:`.problems`) and their place in
the OpenAPI document (:mod:`.openapi`), ``HEAD`` wherever ``GET`` is and every
method of a path in a 405's ``Allow`` (:mod:`.methods`), the refusal of input no
database can store (:mod:`.inputs`), the resources a request takes from the node
(:mod:`.resources`) and the rendering of events as Server-Sent Events
(:mod:`.streams`). It is an edge: it calls the manager, the catalogue and the
node's services and never the store's SQL, and nothing below imports it.
"""

from __future__ import annotations

from jobyard.api.app import create_app

__all__ = ["create_app"]
