"""The browser UI: server-rendered pages over the same node as the HTTP API.

Owns the page routes (one module per area: :mod:`.dashboard`, :mod:`.jobs`,
:mod:`.submit`, :mod:`.admin`, :mod:`.types`, :mod:`.workflows`, the API's documentation
in :mod:`.docs`, the login page in :mod:`.login`, and the viewer's own account, where
they change their password, in :mod:`.account`), the pure parts they draw with
(:mod:`.forms`: submit forms from a JSON Schema; :mod:`.graph`: the layout of a
workflow's graph), the Jinja2 templates in
``templates/``, and the static files in ``static/`` (its own small scripts and styles,
and vendored assets with their licences in ``static/vendor/``). Pages read through the
manager and the store's parts as the API does, never with SQL of their own; every
change a page makes is a request to an API route with the session cookie and its CSRF
token (or, for a submit form or the password's, a page route that calls the same manager
or function), so the UI can
do nothing the API does not allow. :func:`jobyard.ui.site.install` adds it all to an app.
"""
